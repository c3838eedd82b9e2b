// amber-relay agency console: compose an alert, draw its area, preview who it reaches and
// the screen phones will show, send, update, cancel, and watch the figures live.
//
// No framework, no build step, nothing fetched but this API. There is no session: the
// operator types the agency id and secret; the secret becomes a non-extractable WebCrypto
// HMAC key held in this page's memory (never stored, never sent), and every request is
// signed here exactly as the hook requires:
//   X-Amber-Signature: t=<unix s>,v1=hex(HMAC-SHA256(secret, "<t>.<METHOD> <path>." + body))
//   (<path> with its ?query when there is one)
// Signatures are single use, so each request gets a t of its own (see Signer.stamp).
(function () {
  "use strict";

  var REFRESH_MS = 2000; // live figures
  var LIST_MS = 10000; // the alert list
  var HISTORY_MAX = 300; // samples kept for the chart (10 min at 2 s)
  var PHOTO_MAX = 8;
  var FIGURES = ["matched", "delivered", "shown", "dismissed", "call", "more"];
  var FIGURE_LABELS = {
    matched: "Matched", delivered: "Delivered", shown: "Shown", dismissed: "Dismissed",
    call: "Called", more: "Opened more",
  };
  var COLORS = {
    matched: "#6b6b6b", delivered: "#1565c0", shown: "#2e7d32", dismissed: "#8d6e63",
    call: "#c62828", more: "#ef6c00",
  };

  var $ = function (id) { return document.getElementById(id); };
  var utf8 = new TextEncoder();

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function say(text) { // screen-reader announcement
    var live = $("live");
    live.textContent = "";
    window.setTimeout(function () { live.textContent = text; }, 30);
  }

  // -- signing ----------------------------------------------------------------------

  function hex(buf) {
    return Array.prototype.map.call(new Uint8Array(buf), function (b) {
      return (b < 16 ? "0" : "") + b.toString(16);
    }).join("");
  }

  function Signer(agency, key, offsetS) {
    this.agency = agency;
    this.key = key; // CryptoKey, not extractable
    this.offsetS = offsetS; // server clock - ours, from the Date header
    this.last = {}; // "METHOD path" -> last t used
  }

  // A t never used before for this method and path: two requests with the same method,
  // path and body in one second would otherwise carry the same (spent) signature.
  Signer.prototype.stamp = function (method, path) {
    var k = method + " " + path;
    var now = Math.floor(Date.now() / 1000 + this.offsetS);
    var t = Math.max(now, (this.last[k] || 0) + 1);
    this.last[k] = t;
    return t;
  };

  Signer.prototype.headers = function (method, path, body) {
    var t = this.stamp(method, path);
    var head = utf8.encode(t + "." + method + " " + path + ".");
    var msg = new Uint8Array(head.length + body.length);
    msg.set(head, 0);
    msg.set(body, head.length);
    var agency = this.agency;
    return crypto.subtle.sign("HMAC", this.key, msg).then(function (sig) {
      return { "X-Amber-Agency": agency, "X-Amber-Signature": "t=" + t + ",v1=" + hex(sig) };
    });
  };

  var signer = null;

  // An alert id is "<agency>/<identifier>": its slash stays a path separator (the
  // route takes it), each part is encoded.
  function idPath(id) {
    return id.split("/").map(encodeURIComponent).join("/");
  }

  // One signed request; the hook signs the path with its query. The answer is
  // {status, body} with body the parsed JSON (or null).
  function api(method, path, opts) {
    opts = opts || {};
    if (!signer) return Promise.reject(new Error("not signed in"));
    var body = opts.body === undefined ? new Uint8Array(0)
      : typeof opts.body === "string" ? utf8.encode(opts.body) : opts.body;
    var target = path + (opts.query ? "?" + opts.query : "");
    return signer.headers(method, target, body).then(function (headers) {
      if (body.length) headers["Content-Type"] = opts.contentType || "application/json";
      return fetch(target, {
        method: method, headers: headers, body: body.length ? body : undefined,
        cache: "no-store", credentials: "omit",
      });
    }).then(function (r) {
      return r.text().then(function (text) {
        var parsed = null;
        try { parsed = text ? JSON.parse(text) : null; } catch (e) { parsed = null; }
        return { status: r.status, body: parsed };
      });
    });
  }

  // -- sign in ----------------------------------------------------------------------

  function serverOffset() {
    return fetch("/v1/config", { cache: "no-store" }).then(function (r) {
      var date = Date.parse(r.headers.get("Date") || "");
      return isNaN(date) ? 0 : Math.round((date - Date.now()) / 1000);
    }, function () { return 0; });
  }

  function signInMessage(res, agency) {
    var p = res.body || {};
    if (res.status === 401 && p.code === "unknown_agency") {
      return "No agency \u201c" + agency + "\u201d: check the agency id.";
    }
    if (res.status === 401 && p.code === "bad_signature") {
      return "The secret is wrong for agency \u201c" + agency + "\u201d. Check it and try again.";
    }
    if (res.status === 401 && p.code === "stale_signature") {
      return "This computer's clock is too far from the server's: " + (p.detail || "");
    }
    if (res.status === 503) return "The alert store is unavailable; try again in a few seconds.";
    return "Sign-in refused (" + res.status + "): " + (p.detail || "unexpected answer");
  }

  $("signin-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var agency = $("agency-id").value.trim();
    var secretInput = $("agency-secret");
    var error = $("signin-error");
    error.textContent = "";
    if (!agency || !secretInput.value) {
      error.textContent = "Type the agency id and its secret.";
      (agency ? secretInput : $("agency-id")).focus();
      return;
    }
    if (!window.crypto || !crypto.subtle) {
      error.textContent = "This page needs a secure context (HTTPS or localhost) to sign requests.";
      return;
    }
    var secretBytes = utf8.encode(secretInput.value);
    secretInput.value = ""; // the key below is all the page keeps
    $("signin-button").disabled = true;
    Promise.all([
      crypto.subtle.importKey("raw", secretBytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]),
      serverOffset(),
    ]).then(function (got) {
      secretBytes.fill(0);
      signer = new Signer(agency, got[0], got[1]);
      return api("GET", "/v1/alerts", { query: "state=active" });
    }).then(function (res) {
      if (res.status !== 200) {
        signer = null;
        error.textContent = signInMessage(res, agency);
        secretInput.focus();
        return;
      }
      signedIn(agency, res.body);
    }).catch(function (e) {
      signer = null;
      error.textContent = "Sign-in failed: " + e.message;
    }).then(function () { $("signin-button").disabled = false; });
  });

  function signedIn(agency, listing) {
    $("signin").hidden = true;
    $("workspace").hidden = false;
    $("sign-out").hidden = false;
    $("who").textContent = "Signed in as " + agency;
    document.body.dataset.signedIn = "true";
    if (!form.identifier.value) form.identifier.value = newIdentifier(agency);
    if (!form.expires.value) form.expires.value = localInput(new Date(Date.now() + 4 * 3600 * 1000));
    showList(listing);
    listTimer = window.setInterval(refreshList, LIST_MS);
    form.headline.focus();
    say("Signed in as " + agency);
  }

  $("sign-out").addEventListener("click", function () {
    signer = null;
    stopWatching();
    window.clearInterval(listTimer);
    $("workspace").hidden = true;
    $("sign-out").hidden = true;
    $("signin").hidden = false;
    $("who").textContent = "";
    delete document.body.dataset.signedIn;
    $("agency-secret").focus();
  });

  // -- times --------------------------------------------------------------------------

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function localInput(d) {
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" +
      pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  // "2026-11-22T15:00" (local) -> "2026-11-22T15:00:00-06:00": RFC 3339 with the offset.
  function rfc3339(localValue) {
    var d = new Date(localValue);
    if (isNaN(d.getTime())) return null;
    var off = -d.getTimezoneOffset();
    var sign = off >= 0 ? "+" : "-";
    off = Math.abs(off);
    return localInput(d) + ":00" + sign + pad(Math.floor(off / 60)) + ":" + pad(off % 60);
  }

  function newIdentifier(agency) {
    var d = new Date();
    return agency.toUpperCase().replace(/[^A-Z0-9-]/g, "") + "-" + d.getFullYear() + pad(d.getMonth() + 1) +
      pad(d.getDate()) + "-" + pad(d.getHours()) + pad(d.getMinutes());
  }

  // -- the form: repeatable people and vehicles ---------------------------------------

  var form = $("compose");

  var SPECS = {
    children: { label: "Child", fields: [["name", "Name"], ["age", "Age", "number"], ["sex", "Sex"],
      ["race", "Race"], ["height", "Height"], ["weight", "Weight"], ["hair", "Hair"], ["eyes", "Eyes"],
      ["clothing", "Clothing", "wide"], ["photos", "Photo numbers (e.g. 1, 2)", "photos"]] },
    suspects: { label: "Suspect", fields: [["name", "Name"], ["age", "Age", "number"], ["sex", "Sex"],
      ["race", "Race"], ["height", "Height"], ["weight", "Weight"], ["hair", "Hair"], ["eyes", "Eyes"],
      ["clothing", "Clothing", "wide"], ["description", "Description", "wide"],
      ["photos", "Photo numbers (e.g. 2)", "photos"]] },
    vehicles: { label: "Vehicle", fields: [["year", "Year", "number"], ["make", "Make"], ["model", "Model"],
      ["color", "Color"], ["body", "Body"], ["plate", "Plate"], ["plate_state", "Plate state"],
      ["description", "Description", "wide"]] },
  };

  function addItem(kind) {
    var box = $(kind).querySelector(".items");
    var spec = SPECS[kind];
    var item = el("fieldset", "item");
    item.appendChild(el("legend", null, ""));
    var grid = el("div", "row wrap");
    spec.fields.forEach(function (f) {
      var label = el("label", "field" + (f[2] === "wide" ? " wide" : ""));
      label.appendChild(document.createTextNode(f[1] + " "));
      var input = el("input");
      input.dataset.name = f[0];
      if (f[2] === "number") { input.type = "number"; input.step = "1"; }
      if (f[2] === "photos") input.inputMode = "numeric";
      label.appendChild(input);
      grid.appendChild(label);
    });
    item.appendChild(grid);
    var remove = el("button", "quiet remove", "Remove");
    remove.type = "button";
    remove.addEventListener("click", function () {
      item.remove();
      renumber(kind);
      $(kind).querySelector(".add").focus();
    });
    item.appendChild(remove);
    box.appendChild(item);
    renumber(kind);
    item.querySelector("input").focus();
  }

  function renumber(kind) {
    var items = $(kind).querySelectorAll(".items > .item");
    Array.prototype.forEach.call(items, function (item, i) {
      var name = SPECS[kind].label + " " + (i + 1);
      item.querySelector("legend").textContent = name;
      item.querySelector(".remove").setAttribute("aria-label", "Remove " + name.toLowerCase());
      Array.prototype.forEach.call(item.querySelectorAll("input"), function (input) {
        input.dataset.path = kind + "[" + i + "]." + input.dataset.name;
      });
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-add]"), function (b) {
    b.addEventListener("click", function () { addItem(b.dataset.add); });
  });

  function readItems(kind) {
    var out = [];
    Array.prototype.forEach.call($(kind).querySelectorAll(".items > .item"), function (item) {
      var obj = {};
      Array.prototype.forEach.call(item.querySelectorAll("input"), function (input) {
        var v = input.value.trim();
        if (!v) return;
        var name = input.dataset.name;
        if (name === "photos") {
          obj.photos = v.split(/[\s,]+/).filter(Boolean).map(function (n) { return parseInt(n, 10) - 1; });
        } else if (name === "age" || name === "year") {
          obj[name] = Number(v);
        } else {
          obj[name] = v;
        }
      });
      out.push(obj);
    });
    return out;
  }

  // -- photos: local files, sent inline (base64) ------------------------------------------

  var photos = []; // {name, data (base64), url (blob:), caption}

  function base64(buf) {
    var bytes = new Uint8Array(buf), chunks = [];
    for (var i = 0; i < bytes.length; i += 0x8000) {
      chunks.push(String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000)));
    }
    return btoa(chunks.join(""));
  }

  $("photo-files").addEventListener("change", function (ev) {
    var files = Array.prototype.slice.call(ev.target.files || []);
    ev.target.value = "";
    var room = PHOTO_MAX - photos.length;
    if (files.length > room) say("At most " + PHOTO_MAX + " photos; " + (files.length - room) + " left out");
    Promise.all(files.slice(0, Math.max(0, room)).map(function (f) {
      return f.arrayBuffer().then(function (buf) {
        return { name: f.name, data: base64(buf), url: URL.createObjectURL(f), caption: "" };
      });
    })).then(function (added) {
      photos = photos.concat(added);
      drawPhotos();
    });
  });

  function drawPhotos() {
    var list = $("photo-list");
    clear(list);
    photos.forEach(function (p, i) {
      var li = el("li", "photo-item");
      var img = el("img");
      img.src = p.url;
      img.alt = "";
      li.appendChild(img);
      var label = el("label", "field");
      label.appendChild(document.createTextNode("Photo " + (i + 1) + " (" + p.name + ") caption "));
      var cap = el("input");
      cap.value = p.caption;
      cap.maxLength = 200;
      cap.dataset.path = "photos[" + i + "].caption";
      cap.addEventListener("input", function () { p.caption = cap.value; });
      label.appendChild(cap);
      li.appendChild(label);
      var rm = el("button", "quiet", "Remove");
      rm.type = "button";
      rm.setAttribute("aria-label", "Remove photo " + (i + 1));
      rm.addEventListener("click", function () {
        URL.revokeObjectURL(p.url);
        photos.splice(i, 1);
        drawPhotos();
      });
      li.appendChild(rm);
      list.appendChild(li);
    });
  }

  // -- the area: map, counties, circles, polygons -----------------------------------------

  var map = window.AmberMap.create($("map"), {
    onChange: drawArea,
    announce: say,
    onState: function (fips) { $("map-state").value = fips; showState(fips); },
  });

  map.ready.then(function (states) {
    var select = $("map-state");
    states.forEach(function (s) {
      var o = el("option", null, s.name);
      o.value = s.fips;
      select.appendChild(o);
    });
  }, function (e) { $("area-error").textContent = "Map outlines unavailable: " + e.message; });

  function showState(fips) {
    if (!fips) return;
    map.loadState(fips).then(function (counties) {
      var dl = $("county-options");
      clear(dl);
      counties.forEach(function (c) {
        var o = el("option");
        o.value = c.name + " (" + c.fips + ")";
        dl.appendChild(o);
      });
      $("map").dataset.state = fips;
    });
  }

  $("map-state").addEventListener("change", function () { showState($("map-state").value); });

  Array.prototype.forEach.call(document.querySelectorAll("input[name=mode]"), function (r) {
    r.addEventListener("change", function () {
      map.setMode(r.value);
      $("finish-polygon").hidden = r.value !== "polygon";
    });
  });
  $("finish-polygon").addEventListener("click", function () { map.finishPolygon(); });
  $("zoom-in").addEventListener("click", function () { map.zoomBy(0.7); });
  $("zoom-out").addEventListener("click", function () { map.zoomBy(1.4); });

  $("county-add").addEventListener("click", function () {
    var raw = $("county-input").value.trim();
    var m = /([0-9]{5})\)?\s*$/.exec(raw);
    var error = $("area-error");
    if (!m) { error.textContent = "Type a county name from the list, or its 5-digit code."; return; }
    error.textContent = "";
    map.addCounty(m[1]);
    $("county-input").value = "";
  });

  $("circle-add").addEventListener("click", function () {
    var lat = Number($("circle-lat").value), lon = Number($("circle-lon").value), r = Number($("circle-radius").value);
    var error = $("area-error");
    if (!$("circle-lat").value || !$("circle-lon").value || !(lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180 && r > 0)) {
      error.textContent = "A circle needs a latitude (-90..90), a longitude (-180..180) and a radius in km.";
      return;
    }
    error.textContent = "";
    map.addCircle({ lat: lat, lon: lon, radius_km: r });
  });

  function chip(text, label, onRemove) {
    var li = el("li", "chip");
    li.appendChild(el("span", null, text));
    var b = el("button", "chip-remove", "\u00d7");
    b.type = "button";
    b.setAttribute("aria-label", "Remove " + label);
    b.addEventListener("click", onRemove);
    li.appendChild(b);
    return li;
  }

  function drawArea(sel) {
    var list = $("area-list");
    clear(list);
    sel.same.forEach(function (fips) {
      var name = map.countyName(fips) || "County " + fips;
      var li = chip(name + " \u00b7 SAME 0" + fips, name, function () { map.removeCounty(fips); });
      li.dataset.fips = fips;
      list.appendChild(li);
    });
    sel.polygons.forEach(function (ring, i) {
      list.appendChild(chip("Polygon " + (i + 1) + " (" + (ring.length - 1) + " points)", "polygon " + (i + 1),
        function () { map.removePolygon(i); }));
    });
    sel.circles.forEach(function (c, i) {
      list.appendChild(chip("Circle " + c.radius_km + " km around " + c.lat.toFixed(3) + ", " + c.lon.toFixed(3),
        "circle " + (i + 1), function () { map.removeCircle(i); }));
    });
    if (!list.childNodes.length) list.appendChild(el("li", "empty", "Nothing yet"));
    map.setResolved(null); // the last preview's area no longer matches
  }
  drawArea(map.selection());

  // -- the document ---------------------------------------------------------------------

  function val(name) {
    var input = form.querySelector('[name="' + name + '"]');
    return input ? input.value.trim() : "";
  }

  function put(obj, key, value) { if (value !== "" && value !== undefined && value !== null) obj[key] = value; }

  function nonEmpty(obj) { return Object.keys(obj).length ? obj : undefined; }

  function buildDoc() {
    var doc = {
      identifier: val("identifier"),
      status: val("status") || "actual",
      headline: val("headline"),
      expires: rfc3339(val("expires")) || val("expires"),
    };
    put(doc, "description", val("description"));
    put(doc, "instruction", val("instruction"));
    put(doc, "sender_name", val("sender_name"));
    var sel = map.selection();
    var area = {};
    if (sel.polygons.length === 1) area.geometry = { type: "Polygon", coordinates: [sel.polygons[0]] };
    else if (sel.polygons.length > 1) area.geometry = { type: "MultiPolygon", coordinates: sel.polygons.map(function (r) { return [r]; }) };
    if (sel.circles.length) area.circles = sel.circles;
    if (sel.same.length) area.same = sel.same.map(function (f) { return "0" + f; });
    doc.area = area;
    ["children", "suspects", "vehicles"].forEach(function (k) {
      var items = readItems(k);
      if (items.length) doc[k] = items;
    });
    if (photos.length) {
      doc.photos = photos.map(function (p) {
        var o = { data: p.data };
        put(o, "caption", p.caption.trim());
        return o;
      });
    }
    var ls = {};
    put(ls, "place", val("last_seen.place"));
    put(ls, "time", val("last_seen.time") ? rfc3339(val("last_seen.time")) : "");
    put(ls, "direction", val("last_seen.direction"));
    put(doc, "last_seen", nonEmpty(ls));
    var contact = {};
    put(contact, "name", val("contact.name"));
    put(contact, "phone", val("contact.phone"));
    put(doc, "contact", nonEmpty(contact));
    if (val("links.0.url")) {
      var link = { url: val("links.0.url") };
      put(link, "title", val("links.0.title"));
      doc.links = [link];
    }
    if (val("es.headline")) {
      var es = { language: "es-US", headline: val("es.headline") };
      put(es, "description", val("es.description"));
      put(es, "instruction", val("es.instruction"));
      doc.translations = [es];
    }
    return doc;
  }

  // -- errors next to the fields they name ---------------------------------------------------

  function clearErrors() {
    $("form-error").textContent = "";
    $("area-error").textContent = "";
    Array.prototype.forEach.call(form.querySelectorAll(".field-error.dynamic"), function (n) { n.remove(); });
    Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (n) {
      n.removeAttribute("aria-invalid");
      n.removeAttribute("aria-describedby");
    });
  }

  // The input a problem's ``field`` (e.g. "children[0].age") names, or the nearest
  // enclosing one ("children[0]" -> the child's first input; "area.same" -> the area).
  function inputFor(path) {
    var p = path;
    while (p) {
      if (p === "area" || p.indexOf("area.") === 0) return null;
      var found = form.querySelector('[data-path="' + p.replace(/"/g, "") + '"]');
      if (!found) found = form.querySelector('[data-path^="' + p.replace(/"/g, "") + '."]');
      if (found) return found;
      var cut = Math.max(p.lastIndexOf("."), p.lastIndexOf("["));
      p = cut > 0 ? p.slice(0, cut) : "";
    }
    return null;
  }

  var errorSeq = 0;

  function showProblem(problem) {
    clearErrors();
    if (!problem) return;
    var text = problem.detail || problem.title || "Refused";
    var field = typeof problem.field === "string" ? problem.field : "";
    if (field === "area" || field.indexOf("area.") === 0) {
      $("area-error").textContent = text;
      $("area").scrollIntoView({ block: "nearest" });
      return;
    }
    var input = field ? inputFor(field) : null;
    if (!input) {
      $("form-error").textContent = text;
      return;
    }
    var msg = el("p", "error field-error dynamic", text);
    msg.id = "field-error-" + (++errorSeq);
    msg.dataset.errorFor = field;
    var label = input.closest("label") || input;
    label.insertAdjacentElement("afterend", msg);
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", msg.id);
    input.focus();
  }

  // -- preview ------------------------------------------------------------------------------

  var phone = $("phone");
  var screenRoot = window.AmberRender.skeleton("The interrupt screen as phones show it");
  phone.appendChild(screenRoot);
  var screen = window.AmberRender.bind(screenRoot);
  var previewLang = "en";
  var lastPreview = null;

  function renderScreen(alert) {
    var a = JSON.parse(JSON.stringify(alert));
    // Photos are stored by the worker after sending: show the operator's own files.
    a.photos = photos.map(function (p) { return { url: p.url, caption: p.caption.trim() || undefined }; });
    window.AmberRender.render(screen, a, { languages: [previewLang === "es" ? "es-US" : "en-US"], localPhotos: true });
  }

  Array.prototype.forEach.call(document.querySelectorAll("#preview .lang-switch button"), function (b) {
    b.addEventListener("click", function () {
      previewLang = b.dataset.lang;
      Array.prototype.forEach.call(b.parentNode.querySelectorAll("button"), function (o) {
        o.setAttribute("aria-pressed", String(o === b));
      });
      if (lastPreview && lastPreview.alert) renderScreen(lastPreview.alert);
    });
  });

  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }

  function showPreview(res) {
    var p = res.body;
    lastPreview = p;
    var reach = $("reach");
    var asOf = new Date(p.reach.as_of);
    reach.dataset.connected = p.ok ? String(p.reach.connected) : "";
    reach.textContent = p.ok
      ? plural(p.reach.connected, "device", "devices") + " connected inside this area now (as of " +
        asOf.toLocaleTimeString() + ")" + (p.public ? "" : " \u2014 but status " + val("status") + " reaches no one")
      : "Not sendable as it stands: see the problem below.";
    var problem = $("preview-problem");
    problem.textContent = p.problem ? p.problem.detail : "";
    showProblem(p.problem);
    var warnings = $("preview-warnings");
    clear(warnings);
    (p.warnings || []).forEach(function (w) { warnings.appendChild(el("li", null, w)); });
    $("preview-counties").textContent = p.counties && p.counties.length
      ? "Counties touched: " + p.counties.map(function (c) { return c.name; }).join(", ") : "";
    map.setResolved(p.area);
    if (p.alert) renderScreen(p.alert);
    var send = $("send-button");
    send.textContent = p.ok && p.version > 1 ? "Send update (version " + p.version + ")" : "Send alert";
    say(reach.textContent);
  }

  $("preview-button").addEventListener("click", function () {
    var body = JSON.stringify(buildDoc());
    $("preview-button").disabled = true;
    api("POST", "/v1/alerts/preview", { body: body }).then(function (res) {
      if (res.status === 200 && res.body) showPreview(res);
      else showProblem(res.body || { detail: "Preview failed: HTTP " + res.status });
    }, function (e) {
      showProblem({ detail: "Preview failed: " + e.message });
    }).then(function () { $("preview-button").disabled = false; });
  });

  // -- send, update, cancel --------------------------------------------------------------------

  $("send-button").addEventListener("click", function () {
    var doc = buildDoc();
    var result = $("send-result");
    result.textContent = "Sending\u2026";
    $("send-button").disabled = true;
    api("POST", "/v1/alerts", { body: JSON.stringify(doc) }).then(function (res) {
      if (res.status === 202) {
        clearErrors();
        result.textContent = "Accepted: " + res.body.id + " version " + res.body.version +
          (res.body.warnings && res.body.warnings.length ? " (" + res.body.warnings.join("; ") + ")" : "");
        say(result.textContent);
        watch(res.body.id);
        refreshList();
      } else {
        result.textContent = "Not sent.";
        showProblem(res.body || { detail: "HTTP " + res.status });
      }
    }, function (e) {
      result.textContent = "Not sent: " + e.message + " (nothing was accepted; try again)";
    }).then(function () { $("send-button").disabled = false; });
  });

  var cancelArmed = null;

  $("cancel-button").addEventListener("click", function () {
    var b = $("cancel-button");
    if (!watching) return;
    if (cancelArmed !== watching) { // two steps: an alert is not cancelled by a slip
      cancelArmed = watching;
      b.textContent = "Press again to cancel " + watching;
      window.setTimeout(function () {
        if (cancelArmed) { cancelArmed = null; b.textContent = "Cancel this alert"; }
      }, 6000);
      return;
    }
    var id = watching;
    cancelArmed = null;
    b.disabled = true;
    api("DELETE", "/v1/alerts/" + idPath(id)).then(function (res) {
      b.textContent = "Cancel this alert";
      if (res.status === 202) say("Cancel accepted for " + id);
      else $("watch-state").textContent = "Cancel refused: " + ((res.body && res.body.detail) || res.status);
      refreshList();
      poll();
    }).then(function () { b.disabled = false; });
  });

  // -- the agency's alerts ---------------------------------------------------------------------

  var listState = "active";
  var listTimer = null;

  Array.prototype.forEach.call(document.querySelectorAll("#alerts .lang-switch button"), function (b) {
    b.addEventListener("click", function () {
      listState = b.dataset.state;
      Array.prototype.forEach.call(b.parentNode.querySelectorAll("button"), function (o) {
        o.setAttribute("aria-pressed", String(o === b));
      });
      refreshList();
    });
  });

  function refreshList() {
    if (!signer) return;
    api("GET", "/v1/alerts", { query: "state=" + listState }).then(function (res) {
      if (res.status === 200) showList(res.body);
    }, function () { /* keep the last list */ });
  }

  function showList(listing) {
    var ul = $("alert-list");
    clear(ul);
    var items = (listing && listing.alerts) || [];
    if (!items.length) ul.appendChild(el("li", "empty", listState === "active" ? "No active alerts" : "No recent alerts"));
    items.forEach(function (a) {
      var li = el("li", "alert-item");
      li.dataset.id = a.id;
      li.dataset.state = a.state;
      var head = el("div", "alert-head");
      head.appendChild(el("strong", null, a.headline || a.id));
      head.appendChild(el("span", "state state-" + String(a.state).split(" ")[0], a.state));
      li.appendChild(head);
      li.appendChild(el("span", "meta", a.id + " \u00b7 v" + a.latest_version));
      var b = el("button", "quiet", "Watch");
      b.type = "button";
      b.setAttribute("aria-label", "Watch " + a.id);
      b.addEventListener("click", function () { watch(a.id); });
      li.appendChild(b);
      ul.appendChild(li);
    });
  }

  // -- live view: funnel per version and counts over time --------------------------------------

  var watching = null;
  var watchTimer = null;
  var history = []; // [{t, totals}]

  function watch(id) {
    stopWatching();
    watching = id;
    history = [];
    $("watch").hidden = false;
    $("watch-title").textContent = "Live: " + id;
    $("watch").dataset.id = id;
    poll();
    watchTimer = window.setInterval(poll, REFRESH_MS);
  }

  function stopWatching() {
    window.clearInterval(watchTimer);
    watchTimer = null;
    watching = null;
  }

  function poll() {
    var id = watching;
    if (!id || !signer) return;
    api("GET", "/v1/alerts/" + idPath(id)).then(function (res) {
      if (id !== watching) return;
      if (res.status !== 200) {
        $("watch-state").textContent = "Figures unavailable: " + ((res.body && res.body.detail) || res.status);
        return;
      }
      history.push({ t: Date.now(), totals: res.body.totals });
      if (history.length > HISTORY_MAX) history.shift();
      drawWatch(res.body);
    }, function () { /* next tick */ });
  }

  function drawWatch(s) {
    var st = $("watch-state");
    st.textContent = "State: " + s.state + " \u00b7 version " + s.applied_version + " of " + s.latest_version;
    st.dataset.state = s.state;
    var box = $("funnel");
    clear(box);
    var versions = Object.keys(s.versions).map(Number).sort(function (a, b) { return b - a; });
    versions.forEach(function (v) {
      var figs = s.versions[String(v)];
      var table = el("table", "funnel-table");
      table.dataset.version = String(v);
      table.appendChild(el("caption", null, "Version " + v));
      var top = Math.max(1, figs.matched, figs.delivered);
      FIGURES.forEach(function (f) {
        var tr = el("tr");
        tr.dataset.figure = f;
        tr.appendChild(el("th", null, FIGURE_LABELS[f]));
        var bar = el("td", "bar-cell");
        var fill = el("span", "bar");
        fill.style.width = Math.round(100 * Math.min(1, figs[f] / top)) + "%";
        fill.style.background = COLORS[f];
        bar.appendChild(fill);
        tr.appendChild(bar);
        var n = el("td", "count", figs[f]);
        n.dataset.figure = f;
        tr.appendChild(n);
        table.appendChild(tr);
      });
      box.appendChild(table);
    });
    drawChart();
  }

  function drawChart() {
    var chart = $("chart");
    var W = 320, H = 120;
    chart.setAttribute("viewBox", "0 0 " + W + " " + H);
    while (chart.firstChild) chart.removeChild(chart.firstChild);
    if (!history.length) return;
    var max = 1;
    history.forEach(function (h) { FIGURES.forEach(function (f) { max = Math.max(max, h.totals[f]); }); });
    var t0 = history[0].t, t1 = Math.max(history[history.length - 1].t, t0 + 1);
    var legend = $("chart-legend");
    clear(legend);
    FIGURES.forEach(function (f) {
      var pts = history.map(function (h) {
        var x = 4 + (W - 8) * (h.t - t0) / (t1 - t0);
        var y = H - 4 - (H - 8) * h.totals[f] / max;
        return x.toFixed(1) + "," + y.toFixed(1);
      }).join(" ");
      var line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
      line.setAttribute("points", pts);
      line.setAttribute("fill", "none");
      line.setAttribute("stroke", COLORS[f]);
      line.setAttribute("stroke-width", "2");
      chart.appendChild(line);
      var key = el("span", "key");
      var sw = el("span", "swatch");
      sw.style.background = COLORS[f];
      key.appendChild(sw);
      key.appendChild(document.createTextNode(FIGURE_LABELS[f] + " " + history[history.length - 1].totals[f]));
      legend.appendChild(key);
    });
    chart.setAttribute("aria-label", "Counts over the last " + Math.round((t1 - t0) / 1000) + " s, up to " + max);
  }
})();
