// amber-relay: the AMBER interrupt screen's renderer, shared by the public page
// (app.js) and the agency console's preview (console.js), so the console shows the
// screen exactly as phones render it.
//
// Alert text only ever reaches the DOM through textContent or attribute setters: an
// agency's text must never become markup. URLs are used only when they parse as
// http(s); tel: links keep digits, +, * and #.
(function () {
  "use strict";

  var NCMEC_URL = "https://www.missingkids.org/";
  var PARTS = ["content", "event", "headline", "gallery", "description", "children",
    "vehicles", "last-seen", "suspects", "instruction", "sender", "call", "more"];

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

  function preferredLanguages(override) {
    if (Array.isArray(override) && override.length) {
      return override.map(function (l) { return String(l).toLowerCase(); });
    }
    var langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en-US"];
    return Array.prototype.map.call(langs, function (l) { return String(l).toLowerCase(); });
  }

  // The info block in the reader's best language: exact tag, then primary subtag, in
  // the order of the browser's preferences; else the alert's first (primary) info.
  function pickInfo(infos, languages) {
    if (!Array.isArray(infos) || !infos.length) return {};
    var tags = infos.map(function (i) { return str(i && i.language).toLowerCase() || "en-us"; });
    var prefs = preferredLanguages(languages);
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

  // Photos come from the API (http/https); the console also shows files the operator
  // picked, as blob: URLs it made itself (opts.localPhotos), never a URL from a frame.
  var allowBlob = false;

  function photoImg(photo, alt) {
    var url = photo && (allowBlob && typeof photo.url === "string" && photo.url.indexOf("blob:") === 0
      ? photo.url : safeHttpUrl(photo.url));
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

  // Fill a bound screen (see bind) with alert ``a`` (an AlertContent, as the stream
  // sends it). opts.languages overrides the browser's languages (the console's language
  // switch); opts.localPhotos lets blob: photo URLs through (the console's own files).
  function render(ui, a, opts) {
    opts = opts || {};
    allowBlob = !!opts.localPhotos;
    var info = pickInfo(a.infos, opts.languages);
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
    allowBlob = false;
  }

  // The screen's parts inside ``root``, found by their data-part attributes.
  function bind(root) {
    var ui = {};
    PARTS.forEach(function (name) {
      var key = name === "last-seen" ? "lastSeen" : name;
      ui[key] = root.querySelector('[data-part="' + name + '"]');
      if (!ui[key]) throw new Error("interrupt screen has no part " + name);
    });
    return ui;
  }

  // A fresh interrupt screen (the public page's markup, without its dialog ids), for
  // pages that show it inline: the console's phone preview.
  function skeleton(label) {
    var root = el("section", "interrupt inline");
    root.setAttribute("aria-label", label || "Interrupt screen preview");
    var banner = el("div", "banner");
    banner.appendChild(el("span", "banner-title", "AMBER ALERT"));
    root.appendChild(banner);
    var body = el("div", "body");
    var content = el("div", "content");
    content.dataset.part = "content";
    [["p", "event", "event"], ["h1", "headline", "headline"], ["div", "gallery", "gallery"],
      ["p", "description", "description"], ["div", "people", "children"],
      ["div", "vehicles", "vehicles"], ["div", "last-seen", "last-seen"],
      ["div", "people", "suspects"], ["p", "instruction", "instruction"],
      ["div", "sender", "sender"]].forEach(function (spec) {
      var node = el(spec[0], spec[1]);
      node.dataset.part = spec[2];
      content.appendChild(node);
    });
    body.appendChild(content);
    root.appendChild(body);
    var actions = el("div", "actions");
    var call = el("a", "button call", "Call 911");
    call.dataset.part = "call";
    call.href = "tel:911";
    var more = el("a", "button more", "More on NCMEC");
    more.dataset.part = "more";
    more.href = NCMEC_URL;
    more.target = "_blank";
    more.rel = "noopener noreferrer";
    actions.appendChild(call);
    actions.appendChild(more);
    root.appendChild(actions);
    return root;
  }

  window.AmberRender = {
    bind: bind,
    render: render,
    skeleton: skeleton,
    pickInfo: pickInfo,
    safeHttpUrl: safeHttpUrl,
    formatTime: formatTime,
  };
})();
