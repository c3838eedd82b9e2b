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

  // -- rendering: the shared renderer (render.js), also used by the agency console ---

  var screen = window.AmberRender.bind(ui.overlay);

  function render(a) {
    window.AmberRender.render(screen, a);
  }

  locate();
})();
