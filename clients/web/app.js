// amber-relay demo page: the interrupt screen an app shows beside its feed.
//
// No framework, no build step, no network but the API that served this page and the
// stream it names in /v1/config. Alert text only ever reaches the DOM through
// textContent or attribute setters: an agency's text must never become markup.
(function () {
  "use strict";

  var SEEN_KEY = "amber-relay:seen";
  var SEEN_CAP = 256; // the stream server accepts at most 256 entries in hello.seen
  var HELLO_MAX_BYTES = 15000; // and frames of at most 16 KiB: drop the oldest entries past it
  var BACKOFF_BASE_MS = 500;
  var BACKOFF_CAP_MS = 30000;
  var STABLE_MS = 10000; // a connection up this long resets the backoff
  var PENDING_ACKS_CAP = 64;
  var NOTICE_MS = 6000;
  var NCMEC_URL = "https://www.missingkids.org/";
  var MOVE_MIN_DEG = 0.001; // ~100 m: smaller geolocation jitter sends no move

  var $ = function (id) { return document.getElementById(id); };

  var ui = {
    status: $("status"),
    where: $("where-label"),
    form: $("where-form"),
    formLat: $("where-lat"),
    formLon: $("where-lon"),
    app: $("app"),
    notice: $("notice"),
    overlay: $("alert"),
    updated: $("alert-updated"),
    content: $("alert-content"),
    event: $("alert-event"),
    headline: $("alert-headline"),
    gallery: $("alert-gallery"),
    description: $("alert-description"),
    children: $("alert-children"),
    suspects: $("alert-suspects"),
    vehicles: $("alert-vehicles"),
    lastSeen: $("alert-last-seen"),
    instruction: $("alert-instruction"),
    sender: $("alert-sender"),
    call: $("alert-call"),
    more: $("alert-more"),
    queue: $("alert-queue"),
    dismiss: $("alert-dismiss"),
  };

  // -- seen: (id, version) pairs shown on this device, oldest first ---------------

  var memorySeen = [];

  function loadSeen() {
    var raw = null;
    try { raw = window.localStorage.getItem(SEEN_KEY); } catch (e) { return memorySeen; }
    if (!raw) return [];
    try {
      var list = JSON.parse(raw);
      if (!Array.isArray(list)) return [];
      return list.filter(function (p) {
        return Array.isArray(p) && p.length === 2 && typeof p[0] === "string" &&
          Number.isInteger(p[1]) && p[1] >= 1;
      }).slice(-SEEN_CAP);
    } catch (e) {
      return [];
    }
  }

  function seenVersion(id) {
    var list = loadSeen();
    for (var i = 0; i < list.length; i++) if (list[i][0] === id) return list[i][1];
    return 0;
  }

  function markSeen(id, version) {
    var list = loadSeen().filter(function (p) { return p[0] !== id; });
    list.push([id, Math.max(version, seenVersion(id))]);
    list = list.slice(-SEEN_CAP);
    memorySeen = list;
    try { window.localStorage.setItem(SEEN_KEY, JSON.stringify(list)); } catch (e) { /* private mode */ }
  }

  // -- location -------------------------------------------------------------------

  var place = null; // {lat, lon} or {region}
  var watching = false;

  function number(s) {
    if (s === null || s.trim() === "") return NaN;
    return Number(s);
  }

  function validLatLon(lat, lon) {
    return isFinite(lat) && isFinite(lon) && lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180;
  }

  function placeFromQuery() {
    var q = new URLSearchParams(window.location.search);
    var region = q.get("region");
    if (region !== null && /^[0-9]{5}$/.test(region)) return { region: region };
    var lat = number(q.get("lat")), lon = number(q.get("lon"));
    if (validLatLon(lat, lon)) return { lat: lat, lon: lon };
    return null;
  }

  function describePlace(p) {
    if (!p) return "";
    if (p.region) return "Alerts for county " + p.region;
    return "Alerts for " + p.lat.toFixed(4) + ", " + p.lon.toFixed(4);
  }

  function setPlace(p) {
    var first = place === null;
    place = p;
    ui.where.textContent = describePlace(p);
    ui.form.hidden = true;
    if (first) connect();
    else sendMove();
  }

  function askForPlace(reason) {
    ui.form.hidden = false;
    setStatus("needs-location", reason || "Location needed");
  }

  function locate() {
    var fromQuery = placeFromQuery();
    if (fromQuery) { setPlace(fromQuery); return; }
    if (!("geolocation" in navigator)) { askForPlace("Location unavailable"); return; }
    setStatus("locating", "Finding your location…");
    var answered = false;
    // Some browsers never call back while a permission prompt is open: time out ourselves.
    var guard = window.setTimeout(function () {
      if (!answered) { answered = true; askForPlace("Location unavailable"); }
    }, 15000);
    navigator.geolocation.getCurrentPosition(function (pos) {
      window.clearTimeout(guard);
      var p = { lat: pos.coords.latitude, lon: pos.coords.longitude };
      if (!answered) { answered = true; setPlace(p); watch(); }
      else setPlace(p); // late answer after the form was shown: use it
    }, function () {
      window.clearTimeout(guard);
      if (!answered) { answered = true; askForPlace("Location not shared"); }
    }, { timeout: 10000, maximumAge: 60000 });
  }

  function watch() {
    if (watching || !navigator.geolocation.watchPosition) return;
    watching = true;
    navigator.geolocation.watchPosition(function (pos) {
      var lat = pos.coords.latitude, lon = pos.coords.longitude;
      if (place && place.lat !== undefined &&
          Math.abs(lat - place.lat) < MOVE_MIN_DEG && Math.abs(lon - place.lon) < MOVE_MIN_DEG) return;
      setPlace({ lat: lat, lon: lon });
    }, function () { /* keep the last position */ }, { maximumAge: 60000 });
  }

  ui.form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var lat = number(ui.formLat.value), lon = number(ui.formLon.value);
    if (!validLatLon(lat, lon)) { setStatus("needs-location", "Latitude -90..90, longitude -180..180"); return; }
    setPlace({ lat: lat, lon: lon });
  });

  // -- status line ----------------------------------------------------------------

  function setStatus(state, text) {
    ui.status.dataset.state = state;
    ui.status.textContent = text;
  }

  // -- connection -----------------------------------------------------------------

  var ws = null;
  var ready = false; // hello sent on the current socket
  var attempt = 0;
  var retryTimer = null;
  var countdownTimer = null;
  var stableTimer = null;
  var pendingAcks = [];
  var streamUrl = null;

  function fetchConfig() {
    return fetch("/v1/config", { cache: "no-store" }).then(function (r) {
      if (!r.ok) throw new Error("config: HTTP " + r.status);
      return r.json();
    }).then(function (cfg) {
      if (!cfg || typeof cfg.stream_url !== "string" || !/^wss?:\/\//.test(cfg.stream_url)) {
        throw new Error("config: no stream_url");
      }
      return cfg.stream_url;
    });
  }

  function connect() {
    clearRetry();
    if (!place) return;
    setStatus("connecting", "Connecting…");
    // The config is fetched on every attempt: a deployment may move its stream.
    fetchConfig().then(function (url) {
      streamUrl = url;
      open(url);
    }, function () {
      scheduleReconnect("");
    });
  }

  function open(url) {
    var sock;
    try { sock = new WebSocket(url); } catch (e) { scheduleReconnect(""); return; }
    ws = sock;
    ready = false;
    sock.onopen = function () {
      if (ws !== sock) return;
      var hello = { type: "hello", seen: loadSeen() };
      if (place.region) hello.region = place.region;
      else { hello.lat = place.lat; hello.lon = place.lon; }
      var data = JSON.stringify(hello);
      var utf8 = new TextEncoder();
      while (utf8.encode(data).length > HELLO_MAX_BYTES && hello.seen.length) {
        hello.seen.splice(0, Math.max(1, hello.seen.length >> 3));
        data = JSON.stringify(hello);
      }
      sock.send(data);
      ready = true;
    };
    sock.onmessage = function (ev) {
      if (ws !== sock || typeof ev.data !== "string") return;
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (!msg || typeof msg !== "object") return;
      if (msg.type === "welcome") onWelcome(msg);
      else if (msg.type === "interrupt" && msg.alert) onInterrupt(msg.alert);
      else if (msg.type === "clear" && typeof msg.id === "string") onClear(msg.id, msg.reason);
    };
    sock.onclose = function (ev) {
      if (ws !== sock) return;
      ws = null;
      ready = false;
      window.clearTimeout(stableTimer);
      var why = ev.code >= 1007 && ev.code <= 1009 ? (ev.reason || "") : "";
      scheduleReconnect(why);
    };
  }

  function onWelcome(msg) {
    setStatus("connected", "Connected");
    ui.status.dataset.active = String(msg.active);
    flushAcks();
    window.clearTimeout(stableTimer);
    stableTimer = window.setTimeout(function () { attempt = 0; }, STABLE_MS);
  }

  function clearRetry() {
    window.clearTimeout(retryTimer);
    window.clearInterval(countdownTimer);
    retryTimer = countdownTimer = null;
  }

  // Full-jitter exponential backoff: a uniform delay in [0, min(cap, base * 2^attempt)),
  // so a crowd that lost the same server does not come back in step.
  function scheduleReconnect(why) {
    clearRetry();
    var ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * Math.pow(2, attempt));
    attempt = Math.min(attempt + 1, 30);
    var delay = Math.random() * ceiling;
    var due = Date.now() + delay;
    var show = function () {
      var left = Math.max(0, Math.ceil((due - Date.now()) / 1000));
      setStatus("reconnecting", "Reconnecting in " + left + " s" + (why ? " (" + why + ")" : ""));
    };
    show();
    countdownTimer = window.setInterval(show, 1000);
    retryTimer = window.setTimeout(connect, delay);
  }

  window.addEventListener("online", function () {
    if (retryTimer !== null) connect();
  });

  function sendMove() {
    if (!ws || !ready || ws.readyState !== WebSocket.OPEN) return; // the next hello carries it
    var move = { type: "move" };
    if (place.region) move.region = place.region;
    else { move.lat = place.lat; move.lon = place.lon; }
    ws.send(JSON.stringify(move));
  }

  function ack(alert, event) {
    var frame = { type: "ack", id: alert.id, version: alert.version, event: event };
    if (ws && ready && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify(frame));
    } else if (pendingAcks.length < PENDING_ACKS_CAP) {
      pendingAcks.push(frame);
    }
  }

  function flushAcks() {
    var acks = pendingAcks;
    pendingAcks = [];
    acks.forEach(function (f) { ws.send(JSON.stringify(f)); });
  }

  // -- alerts: the one on screen and the queue behind it -------------------------

  var current = null; // the alert on screen
  var queue = []; // alerts waiting their turn, oldest first
  var returnFocus = null;

  function validAlert(a) {
    return a && typeof a.id === "string" && Number.isInteger(a.version) && a.version >= 1;
  }

  function onInterrupt(alert) {
    if (!validAlert(alert)) return;
    if (current && current.id === alert.id) {
      if (alert.version > current.version) show(alert, true);
      return;
    }
    if (seenVersion(alert.id) >= alert.version) return; // exactly once on screen
    for (var i = 0; i < queue.length; i++) {
      if (queue[i].id === alert.id) {
        if (alert.version > queue[i].version) queue[i] = alert;
        updateQueueLabel();
        return;
      }
    }
    if (current) {
      queue.push(alert);
      updateQueueLabel();
    } else {
      show(alert, false);
    }
  }

  function onClear(id, reason) {
    var before = queue.length;
    queue = queue.filter(function (a) { return a.id !== id; });
    if (current && current.id === id) {
      hide();
      notify(reason === "expired" ? "Alert expired"
        : reason === "area_changed" ? "Alert no longer covers your area"
        : "Alert cancelled");
    } else if (queue.length !== before) {
      updateQueueLabel();
    }
  }

  function show(alert, replacing) {
    if (!current) returnFocus = document.activeElement;
    current = alert;
    render(alert);
    ui.updated.hidden = !replacing;
    updateQueueLabel();
    ui.overlay.hidden = false;
    ui.app.setAttribute("aria-hidden", "true");
    ui.app.inert = true;
    document.body.classList.add("interrupted");
    ui.overlay.scrollTop = 0;
    ui.overlay.querySelector(".body").scrollTop = 0;
    ui.overlay.focus();
    markSeen(alert.id, alert.version);
    ack(alert, "shown");
  }

  function hide() {
    current = null;
    if (queue.length) { show(queue.shift(), false); return; }
    ui.overlay.hidden = true;
    ui.app.removeAttribute("aria-hidden");
    ui.app.inert = false;
    document.body.classList.remove("interrupted");
    if (returnFocus && typeof returnFocus.focus === "function" && document.contains(returnFocus)) {
      returnFocus.focus();
    }
    returnFocus = null;
  }

  function updateQueueLabel() {
    var n = queue.length;
    ui.queue.textContent = n === 0 ? "" : n === 1 ? "1 more alert" : n + " more alerts";
  }

  var noticeTimer = null;
  function notify(text) {
    ui.notice.textContent = text;
    ui.notice.hidden = false;
    window.clearTimeout(noticeTimer);
    noticeTimer = window.setTimeout(function () { ui.notice.hidden = true; }, NOTICE_MS);
  }

  ui.dismiss.addEventListener("click", function () {
    if (!current) return;
    ack(current, "dismissed");
    hide();
  });
  ui.call.addEventListener("click", function () { if (current) ack(current, "call"); });
  ui.more.addEventListener("click", function () { if (current) ack(current, "more"); });

  ui.overlay.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape") {
      ev.preventDefault();
      ui.dismiss.click();
    } else if (ev.key === "Tab") {
      // Keep focus inside the dialog while it is up.
      var focusable = Array.prototype.filter.call(
        ui.overlay.querySelectorAll("a[href], button, [tabindex]"),
        function (el) { return el.offsetParent !== null || el === ui.overlay; });
      if (!focusable.length) return;
      var first = focusable[0], last = focusable[focusable.length - 1];
      if (ev.shiftKey && (document.activeElement === first || document.activeElement === ui.overlay)) {
        ev.preventDefault(); last.focus();
      } else if (!ev.shiftKey && document.activeElement === last) {
        ev.preventDefault(); first.focus();
      }
    }
  });

  // -- rendering (textContent only) -------------------------------------------------

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function str(v) {
    return typeof v === "string" ? v.trim() : typeof v === "number" ? String(v) : "";
  }

  function preferredLanguages() {
    var langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en-US"];
    return Array.prototype.map.call(langs, function (l) { return String(l).toLowerCase(); });
  }

  // The info block in the reader's best language: exact tag, then primary subtag, in
  // the order of the browser's preferences; else the alert's first (primary) info.
  function pickInfo(infos) {
    if (!Array.isArray(infos) || !infos.length) return {};
    var tags = infos.map(function (i) { return str(i && i.language).toLowerCase() || "en-us"; });
    var prefs = preferredLanguages();
    for (var p = 0; p < prefs.length; p++) {
      var exact = tags.indexOf(prefs[p]);
      if (exact >= 0) return infos[exact];
      var primary = prefs[p].split("-")[0];
      for (var i = 0; i < tags.length; i++) if (tags[i].split("-")[0] === primary) return infos[i];
    }
    return infos[0] || {};
  }

  function safeHttpUrl(raw) {
    if (typeof raw !== "string" || !raw) return null;
    try {
      var u = new URL(raw, window.location.href);
      return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
    } catch (e) {
      return null;
    }
  }

  function telHref(raw) {
    var digits = str(raw).replace(/[^0-9+*#]/g, "");
    return digits ? "tel:" + digits : null;
  }

  function formatTime(raw) {
    var s = str(raw);
    if (!s) return "";
    var t = Date.parse(s);
    if (isNaN(t)) return s;
    try {
      return new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" }).format(new Date(t));
    } catch (e) {
      return new Date(t).toLocaleString();
    }
  }

  function photoImg(photo, alt) {
    var url = photo && safeHttpUrl(photo.url);
    if (!url) return null;
    var img = el("img", "photo");
    img.src = url;
    img.alt = str(photo.caption) || alt;
    img.decoding = "async";
    if (Number.isInteger(photo.width) && Number.isInteger(photo.height) && photo.width > 0 && photo.height > 0) {
      img.width = photo.width;
      img.height = photo.height;
    }
    return img;
  }

  // A list of [label, value, wide?] rows; empty values are left out. Wide rows (free
  // text) take a line of their own, short ones flow side by side.
  function facts(rows, className) {
    var dl = el("dl", className || "facts");
    rows.forEach(function (r) {
      var v = str(r[1]);
      if (!v) return;
      var pair = el("div", r[2] ? "fact wide" : "fact");
      pair.appendChild(el("dt", null, r[0]));
      pair.appendChild(el("dd", null, v));
      dl.appendChild(pair);
    });
    return dl.childNodes.length ? dl : null;
  }

  function personCard(person, role, photos, index) {
    var card = el("article", "person " + role);
    var label = role === "child" ? "Child" : "Suspect";
    var name = str(person.name);
    var refs = Array.isArray(person.photos) ? person.photos : [];
    if (refs.length) {
      var strip = el("div", "photos");
      refs.forEach(function (i) {
        var img = Number.isInteger(i) ? photoImg(photos[i], "Photo of " + (name || label.toLowerCase())) : null;
        if (img) strip.appendChild(img);
      });
      if (strip.childNodes.length) {
        card.appendChild(strip);
        card.classList.add("has-photo");
      }
    }
    var info = el("div", "person-info");
    var head = el("div", "person-head");
    head.appendChild(el("span", "role", label + (index > 0 ? " " + (index + 1) : "")));
    head.appendChild(el("h2", "name", name || "Name not released"));
    info.appendChild(head);
    card.appendChild(info);
    var age = Number.isInteger(person.age) ? person.age + (person.age === 1 ? " year old" : " years old") : "";
    var rows = facts([
      ["Age", age], ["Sex", person.sex], ["Race", person.race], ["Height", person.height],
      ["Weight", person.weight], ["Hair", person.hair], ["Eyes", person.eyes],
      ["Clothing", person.clothing, true], ["Description", person.description, true],
    ], "facts flow");
    if (rows) info.appendChild(rows);
    return card;
  }

  function vehicleCard(v) {
    var card = el("article", "vehicle");
    var title = [v.year, v.color, v.make, v.model].map(str).filter(Boolean).join(" ");
    card.appendChild(el("span", "role", "Vehicle"));
    card.appendChild(el("h2", "name", title || "Vehicle"));
    var plate = str(v.plate);
    if (plate) {
      var p = el("p", "plate");
      p.appendChild(el("span", "plate-label", "Plate "));
      p.appendChild(el("span", "plate-number", plate));
      var st = str(v.plate_state);
      if (st) p.appendChild(el("span", "plate-state", " (" + st + ")"));
      card.appendChild(p);
    }
    var rows = facts([["Body", v.body], ["Description", v.description, true]], "facts flow");
    if (rows) card.appendChild(rows);
    return card;
  }

  function section(container, title, nodes) {
    clear(container);
    if (!nodes.length) { container.hidden = true; return; }
    container.hidden = false;
    if (title) container.appendChild(el("h3", "section-title", title));
    nodes.forEach(function (n) { container.appendChild(n); });
  }

  function text(node, value) {
    var v = str(value);
    node.textContent = v;
    node.hidden = !v;
  }

  function render(a) {
    var info = pickInfo(a.infos);
    var photos = Array.isArray(a.photos) ? a.photos : [];
    ui.content.lang = str(info.language) || "en";
    text(ui.event, [a.event, a.area_description].map(str).filter(Boolean).join(" · "));
    text(ui.headline, info.headline || (a.infos && a.infos[0] && a.infos[0].headline) || "AMBER Alert");
    text(ui.description, info.description);

    var children = Array.isArray(a.children) ? a.children : [];
    var suspects = Array.isArray(a.suspects) ? a.suspects : [];
    var vehicles = Array.isArray(a.vehicles) ? a.vehicles : [];

    // Photos no person points at (or all of them, when nobody points at any).
    var used = {};
    children.concat(suspects).forEach(function (p) {
      (Array.isArray(p.photos) ? p.photos : []).forEach(function (i) { used[i] = true; });
    });
    section(ui.gallery, "", photos.map(function (ph, i) {
      return used[i] ? null : photoImg(ph, "Alert photo " + (i + 1));
    }).filter(Boolean));

    section(ui.children, children.length > 1 ? "Children" : "",
      children.map(function (p, i) { return personCard(p || {}, "child", photos, children.length > 1 ? i : 0); }));
    section(ui.suspects, suspects.length > 1 ? "Suspects" : "",
      suspects.map(function (p, i) { return personCard(p || {}, "suspect", photos, suspects.length > 1 ? i : 0); }));
    section(ui.vehicles, "", vehicles.map(function (v) { return vehicleCard(v || {}); }));

    var ls = a.last_seen || {};
    var seenRows = facts([["Place", ls.place], ["Time", formatTime(ls.time)], ["Direction", ls.direction]]);
    section(ui.lastSeen, "Last seen", seenRows ? [seenRows] : []);

    text(ui.instruction, info.instruction);

    var senderNodes = [];
    if (str(a.sender_name)) senderNodes.push(el("p", "from", "Issued by " + str(a.sender_name)));
    var c = a.contact || {};
    if (str(c.name) || str(c.phone)) {
      var line = el("p", "contact");
      line.appendChild(document.createTextNode("Tips: " + (str(c.name) ? str(c.name) + " " : "")));
      var href = telHref(c.phone);
      if (href) {
        var phone = el("a", "phone", str(c.phone));
        phone.href = href;
        line.appendChild(phone);
      } else if (str(c.phone)) {
        line.appendChild(document.createTextNode(str(c.phone)));
      }
      senderNodes.push(line);
    }
    var sent = formatTime(a.sent);
    if (sent) senderNodes.push(el("p", "sent", "Sent " + sent));
    section(ui.sender, "", senderNodes);

    var call = str(a.call) || "911";
    ui.call.href = telHref(call) || "tel:911";
    ui.call.textContent = "Call " + call;

    var link = Array.isArray(a.links) && a.links.length ? a.links[0] : null;
    ui.more.href = (link && safeHttpUrl(link.url)) || NCMEC_URL;
    if (link && str(link.title)) ui.more.title = str(link.title);
    else ui.more.removeAttribute("title");
  }

  locate();
})();
