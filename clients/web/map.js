// amber-relay agency console: the area map. SVG drawn from the project's own state and
// county outlines (GET /v1/geo/states.json, /v1/geo/counties.json?state=NN): no tiles,
// nothing fetched from anywhere else. Pan (drag, arrow keys), zoom (wheel, +/-), click
// counties to add their SAME codes, draw polygons, drag circles; the server's resolved
// area is drawn over it after a preview.
//
// Projection: equirectangular with longitudes scaled by cos(38 deg): x = lon * cos * K,
// y = -lat * K. Good enough to pick counties; the server decides every boundary.
(function () {
  "use strict";

  var SVG_NS = "http://www.w3.org/2000/svg";
  var K = 100; // SVG units per degree of latitude
  var COS = Math.cos(38 * Math.PI / 180);
  var EARTH_KM = 6371.0088;
  var CLICK_SLOP_PX = 5; // a press that moves less than this is a click, not a pan
  var CLOSE_PX = 10; // a click this near the first vertex closes the polygon
  var MIN_W = 2; // most zoomed-in view width (SVG units, ~0.03 deg)
  var US = [-125, 24, -66, 50]; // lower 48: the first view

  function project(lon, lat) { return [lon * COS * K, -lat * K]; }
  function unproject(x, y) { return { lon: x / (COS * K), lat: -y / K }; }

  function svg(tag, attrs) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }

  function ringPath(ring) {
    var parts = [];
    for (var i = 0; i < ring.length; i++) {
      var p = project(ring[i][0], ring[i][1]);
      parts.push((i ? "L" : "M") + p[0].toFixed(2) + " " + p[1].toFixed(2));
    }
    return parts.join("") + "Z";
  }

  function geometryPath(g) {
    if (!g) return "";
    var polys = g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [];
    return polys.map(function (rings) { return rings.map(ringPath).join(""); }).join("");
  }

  function haversineKm(a, b) {
    var p1 = a.lat * Math.PI / 180, p2 = b.lat * Math.PI / 180;
    var dp = p2 - p1, dl = (b.lon - a.lon) * Math.PI / 180;
    var h = Math.sin(dp / 2) * Math.sin(dp / 2) + Math.cos(p1) * Math.cos(p2) * Math.sin(dl / 2) * Math.sin(dl / 2);
    return 2 * EARTH_KM * Math.asin(Math.min(1, Math.sqrt(h)));
  }

  // The circle as a ring of [lon, lat] (spherical destination formula), for drawing.
  function circleRing(c, n) {
    n = n || 72;
    var r = c.radius_km / EARTH_KM, lat1 = c.lat * Math.PI / 180, lon1 = c.lon * Math.PI / 180;
    var ring = [];
    for (var i = 0; i <= n; i++) {
      var brg = 2 * Math.PI * i / n;
      var lat2 = Math.asin(Math.sin(lat1) * Math.cos(r) + Math.cos(lat1) * Math.sin(r) * Math.cos(brg));
      var lon2 = lon1 + Math.atan2(Math.sin(brg) * Math.sin(r) * Math.cos(lat1), Math.cos(r) - Math.sin(lat1) * Math.sin(lat2));
      ring.push([lon2 * 180 / Math.PI, lat2 * 180 / Math.PI]);
    }
    return ring;
  }

  function round(v, d) { var f = Math.pow(10, d); return Math.round(v * f) / f; }

  function create(container, opts) {
    opts = opts || {};
    var onChange = opts.onChange || function () {};
    var announce = opts.announce || function () {};

    var root = svg("svg", {
      class: "map-svg", role: "application", tabindex: "0",
      "aria-label": "Area map. Arrow keys pan, plus and minus zoom; in polygon mode Enter finishes the polygon and Escape abandons it.",
    });
    var gStates = svg("g", { class: "states" });
    var gCounties = svg("g", { class: "counties" });
    var gDrawn = svg("g", { class: "drawn" });
    var gResolved = svg("g", { class: "resolved" });
    var gDraft = svg("g", { class: "draft" });
    [gStates, gCounties, gDrawn, gResolved, gDraft].forEach(function (g) { root.appendChild(g); });
    container.appendChild(root);

    var view = { x: 0, y: 0, w: 1, h: 1 };
    var mode = "select";
    var same = []; // county FIPS (5 digits) in the order picked
    var polygons = []; // rings of [lon, lat], closed
    var circles = []; // {lat, lon, radius_km}
    var draft = []; // the polygon being drawn: [lon, lat] points
    var countyNames = {}; // fips -> "Bexar County, Texas"
    var stateNames = {};
    var loaded = {}; // state fips -> promise

    function setView(v) {
      var aspect = (root.clientHeight || 1) / (root.clientWidth || 1);
      v.h = v.w * aspect;
      view = v;
      root.setAttribute("viewBox", [v.x, v.y, v.w, v.h].map(function (n) { return n.toFixed(3); }).join(" "));
    }

    function fit(bbox) {
      var a = project(bbox[0], bbox[3]), b = project(bbox[2], bbox[1]);
      var w = Math.max(MIN_W, (b[0] - a[0]) * 1.08), h = (b[1] - a[1]) * 1.08;
      var aspect = (root.clientHeight || 1) / (root.clientWidth || 1);
      if (h / aspect > w) w = h / aspect;
      setView({ x: (a[0] + b[0]) / 2 - w / 2, y: (a[1] + b[1]) / 2 - w * aspect / 2, w: w });
    }

    function zoomAt(factor, px, py) {
      var w = Math.min(Math.max(view.w * factor, MIN_W), 20000);
      var f = w / view.w;
      setView({ x: px - (px - view.x) * f, y: py - (py - view.y) * f, w: w });
    }

    function zoomBy(factor) { zoomAt(factor, view.x + view.w / 2, view.y + view.h / 2); }

    function panBy(fx, fy) { setView({ x: view.x + fx * view.w, y: view.y + fy * view.h, w: view.w }); }

    function toSvg(ev) {
      var pt = root.createSVGPoint();
      pt.x = ev.clientX; pt.y = ev.clientY;
      var m = root.getScreenCTM();
      return m ? pt.matrixTransform(m.inverse()) : { x: 0, y: 0 };
    }

    function unitsPerPx() { return view.w / (root.clientWidth || 1); }

    // -- outlines ---------------------------------------------------------------

    function loadStates() {
      return fetch("/v1/geo/states.json").then(function (r) {
        if (!r.ok) throw new Error("states: HTTP " + r.status);
        return r.json();
      }).then(function (fc) {
        fc.features.forEach(function (f) {
          stateNames[f.id] = f.properties.name;
          var p = svg("path", { d: geometryPath(f.geometry), "data-state": f.id, class: "state" });
          var t = svg("title");
          t.textContent = f.properties.name;
          p.appendChild(t);
          gStates.appendChild(p);
        });
        return fc.features.map(function (f) { return { fips: f.id, name: f.properties.name, bbox: f.bbox }; })
          .sort(function (a, b) { return a.name < b.name ? -1 : 1; });
      });
    }

    function loadState(fips) {
      if (!loaded[fips]) {
        loaded[fips] = fetch("/v1/geo/counties.json?state=" + encodeURIComponent(fips)).then(function (r) {
          if (!r.ok) throw new Error("counties: HTTP " + r.status);
          return r.json();
        }).then(function (fc) {
          var g = svg("g", { "data-state": fips });
          var box = null;
          fc.features.forEach(function (f) {
            countyNames[f.id] = f.properties.name + ", " + (stateNames[fips] || fips);
            var p = svg("path", { d: geometryPath(f.geometry), "data-fips": f.id, class: "county" });
            var t = svg("title");
            t.textContent = countyNames[f.id];
            p.appendChild(t);
            g.appendChild(p);
            var b = f.bbox;
            // Alaska's Aleutians cross 180 deg: leave them out of the state's view box.
            if (b[2] - b[0] < 180) {
              box = box ? [Math.min(box[0], b[0]), Math.min(box[1], b[1]), Math.max(box[2], b[2]), Math.max(box[3], b[3])] : b.slice();
            }
          });
          gCounties.appendChild(g);
          paintSelection();
          return { box: box, counties: fc.features.map(function (f) { return { fips: f.id, name: countyNames[f.id] }; }) };
        });
      }
      return loaded[fips].then(function (st) {
        if (st.box) fit(st.box);
        announce("Showing the counties of " + (stateNames[fips] || fips));
        return st.counties;
      });
    }

    // -- the selection ------------------------------------------------------------

    function paintSelection() {
      Array.prototype.forEach.call(gCounties.querySelectorAll("path.county"), function (p) {
        p.classList.toggle("selected", same.indexOf(p.getAttribute("data-fips")) >= 0);
      });
    }

    function redrawDrawn() {
      while (gDrawn.firstChild) gDrawn.removeChild(gDrawn.firstChild);
      polygons.forEach(function (ring, i) {
        gDrawn.appendChild(svg("path", { d: ringPath(ring), class: "drawn-polygon", "data-index": i }));
      });
      circles.forEach(function (c, i) {
        gDrawn.appendChild(svg("path", { d: ringPath(circleRing(c)), class: "drawn-circle", "data-index": i }));
      });
    }

    function changed() {
      paintSelection();
      redrawDrawn();
      onChange(selection());
    }

    function selection() {
      return { same: same.slice(), polygons: polygons.slice(), circles: circles.slice() };
    }

    function toggleCounty(fips) {
      var i = same.indexOf(fips);
      if (i >= 0) same.splice(i, 1); else same.push(fips);
      announce((i >= 0 ? "Removed " : "Added ") + (countyNames[fips] || fips));
      changed();
    }

    function addCounty(fips) { if (same.indexOf(fips) < 0) { same.push(fips); changed(); } }
    function removeCounty(fips) { var i = same.indexOf(fips); if (i >= 0) { same.splice(i, 1); changed(); } }
    function addCircle(c) { circles.push(c); changed(); }
    function removeCircle(i) { circles.splice(i, 1); changed(); }
    function addPolygon(ring) { polygons.push(ring); changed(); }
    function removePolygon(i) { polygons.splice(i, 1); changed(); }
    function clearAll() { same = []; polygons = []; circles = []; draft = []; drawDraft(); changed(); }

    // -- drawing -------------------------------------------------------------------

    function drawDraft(extra) {
      while (gDraft.firstChild) gDraft.removeChild(gDraft.firstChild);
      var pts = draft.slice();
      if (extra) pts.push(extra);
      if (pts.length) {
        var d = pts.map(function (p, i) {
          var q = project(p[0], p[1]);
          return (i ? "L" : "M") + q[0].toFixed(2) + " " + q[1].toFixed(2);
        }).join("");
        gDraft.appendChild(svg("path", { d: d, class: "draft-line" }));
        var r = 4 * unitsPerPx();
        draft.forEach(function (p) {
          var q = project(p[0], p[1]);
          gDraft.appendChild(svg("circle", { cx: q[0], cy: q[1], r: r, class: "draft-vertex" }));
        });
      }
    }

    function finishPolygon() {
      if (draft.length < 3) { announce("A polygon needs at least 3 points"); return false; }
      var ring = draft.map(function (p) { return [round(p[0], 5), round(p[1], 5)]; });
      ring.push(ring[0].slice());
      draft = [];
      drawDraft();
      addPolygon(ring);
      announce("Polygon added with " + (ring.length - 1) + " points");
      return true;
    }

    function setMode(m) {
      mode = m;
      draft = [];
      drawDraft();
      root.dataset.mode = m;
    }

    function setResolved(geometry) {
      while (gResolved.firstChild) gResolved.removeChild(gResolved.firstChild);
      if (geometry) gResolved.appendChild(svg("path", { d: geometryPath(geometry), class: "resolved-area" }));
    }

    // -- pointer and keys ------------------------------------------------------------

    var press = null; // {x, y, pt, panning, view}

    root.addEventListener("pointerdown", function (ev) {
      if (ev.button !== 0) return;
      root.setPointerCapture(ev.pointerId);
      var pt = toSvg(ev);
      press = { x: ev.clientX, y: ev.clientY, pt: pt, panning: false, view: view, target: ev.target };
      if (mode === "circle") {
        var c = unproject(pt.x, pt.y);
        press.centre = { lat: c.lat, lon: c.lon };
      }
    });

    root.addEventListener("pointermove", function (ev) {
      if (!press) {
        if (mode === "polygon" && draft.length) {
          var q = toSvg(ev), u = unproject(q.x, q.y);
          drawDraft([u.lon, u.lat]);
        }
        return;
      }
      var dx = ev.clientX - press.x, dy = ev.clientY - press.y;
      if (press.centre) {
        var pt = toSvg(ev), edge = unproject(pt.x, pt.y);
        var km = haversineKm(press.centre, edge);
        press.radius = km;
        while (gDraft.firstChild) gDraft.removeChild(gDraft.firstChild);
        if (km > 0) {
          gDraft.appendChild(svg("path", {
            d: ringPath(circleRing({ lat: press.centre.lat, lon: press.centre.lon, radius_km: km })), class: "draft-circle",
          }));
        }
        return;
      }
      if (!press.panning && Math.abs(dx) + Math.abs(dy) > CLICK_SLOP_PX) press.panning = true;
      if (press.panning) {
        var upp = press.view.w / (root.clientWidth || 1);
        setView({ x: press.view.x - dx * upp, y: press.view.y - dy * upp, w: press.view.w });
      }
    });

    root.addEventListener("pointerup", function (ev) {
      var p = press;
      press = null;
      if (!p) return;
      if (p.centre) {
        while (gDraft.firstChild) gDraft.removeChild(gDraft.firstChild);
        if (p.radius && p.radius >= 0.1) {
          var c = { lat: round(p.centre.lat, 5), lon: round(p.centre.lon, 5), radius_km: round(p.radius, 2) };
          addCircle(c);
          announce("Circle added: " + c.radius_km + " km around " + c.lat + ", " + c.lon);
        }
        return;
      }
      if (p.panning) return;
      if (mode === "polygon") {
        var u = unproject(p.pt.x, p.pt.y);
        if (draft.length >= 3) {
          var first = project(draft[0][0], draft[0][1]);
          var dist = Math.hypot(first[0] - p.pt.x, first[1] - p.pt.y) / unitsPerPx();
          if (dist <= CLOSE_PX) { finishPolygon(); return; }
        }
        draft.push([u.lon, u.lat]);
        drawDraft();
        return;
      }
      var t = p.target;
      if (t && t.nodeName === "title") t = t.parentNode;
      if (t && t.getAttribute && t.getAttribute("data-fips")) toggleCounty(t.getAttribute("data-fips"));
      else if (t && t.getAttribute && t.getAttribute("data-state") && t.classList.contains("state")) {
        var fips = t.getAttribute("data-state");
        if (opts.onState) opts.onState(fips); else loadState(fips);
      }
    });

    root.addEventListener("pointercancel", function () { press = null; });

    root.addEventListener("dblclick", function (ev) {
      if (mode === "polygon") { ev.preventDefault(); finishPolygon(); }
    });

    root.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      var pt = toSvg(ev);
      zoomAt(ev.deltaY > 0 ? 1.25 : 0.8, pt.x, pt.y);
    }, { passive: false });

    root.addEventListener("keydown", function (ev) {
      var k = ev.key, done = true;
      if (k === "ArrowLeft") panBy(-0.1, 0);
      else if (k === "ArrowRight") panBy(0.1, 0);
      else if (k === "ArrowUp") panBy(0, -0.1);
      else if (k === "ArrowDown") panBy(0, 0.1);
      else if (k === "+" || k === "=") zoomBy(0.8);
      else if (k === "-" || k === "_") zoomBy(1.25);
      else if (k === "Enter" && mode === "polygon") finishPolygon();
      else if (k === "Escape" && draft.length) { draft = []; drawDraft(); announce("Polygon abandoned"); }
      else done = false;
      if (done) ev.preventDefault();
    });

    window.addEventListener("resize", function () { setView(view); });

    var b0 = project(US[0], US[3]);
    setView({ x: b0[0], y: b0[1], w: (US[2] - US[0]) * COS * K });
    fit(US);

    return {
      root: root,
      ready: loadStates(),
      loadState: loadState,
      fit: fit,
      zoomBy: zoomBy,
      panBy: panBy,
      setMode: setMode,
      setResolved: setResolved,
      selection: selection,
      addCounty: addCounty,
      removeCounty: removeCounty,
      addCircle: addCircle,
      removeCircle: removeCircle,
      addPolygon: addPolygon,
      removePolygon: removePolygon,
      finishPolygon: finishPolygon,
      clearAll: clearAll,
      countyName: function (fips) { return countyNames[fips] || null; },
      stateName: function (fips) { return stateNames[fips] || null; },
    };
  }

  window.AmberMap = { create: create };
})();
