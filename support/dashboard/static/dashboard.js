// failover-tester dashboard: draws the charts (uPlot), fills the comparison and polls the live run.
// Everything from the store or a journal goes into the page as text (textContent), never as markup.
(function () {
  "use strict";
  var body = document.body;
  var root = body.getAttribute("data-root") || "";
  var data = JSON.parse(document.getElementById("dashboard-data").textContent);
  var COLORS = ["#1f6feb", "#d1242f", "#8250df", "#1a7f37", "#bf8700", "#0a7ea4", "#cf222e", "#6e7781"];

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function fmt(value, count) {
    if (typeof value !== "number" || !isFinite(value)) return "\u2014";
    return count ? String(Math.round(value)) : value.toFixed(2);
  }

  // --- charts ---------------------------------------------------------------------------------------------
  function chart(spec) {
    var holder = document.getElementById("chart-" + spec.id);
    if (!holder) return;
    holder.appendChild(el("h3", {}, spec.title));
    if (typeof uPlot === "undefined") {
      holder.appendChild(el("p", {"class": "muted"}, "No chart: uPlot is not installed (npm ci)."));
      return;
    }
    var measured = spec.series.some(function (s) { return s.values.some(function (v) { return typeof v === "number"; }); });
    if (!spec.x.length || !measured) {
      holder.appendChild(el("p", {"class": "muted"}, spec.x.length ? "Nothing measured." : "Nothing recorded yet."));
      return;
    }
    var labels = spec.labels || [];
    function label(i) { return (i === Math.round(i) && labels[i] !== undefined) ? labels[i] : ""; }
    // x is the order of runs (or drills); the axis names each by its run's start
    var scales = {x: {time: false, range: [-0.5, Math.max(spec.x.length - 0.5, 0.5)]}, y: {auto: true}};
    var axes = [{values: function (u, splits) { return splits.map(label); }, space: 90, incrs: [1, 2, 5, 10, 20, 50, 100]},
                {label: spec.unit || "", size: 60}];
    var series = [{label: "run", value: function (u, v) { return v === null ? "\u2014" : label(v); }}];
    spec.series.forEach(function (s, i) {
      var one = {label: s.label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: false,
                 points: {show: true, size: spec.points ? 8 : 5}, value: function (u, v) { return fmt(v, !spec.unit); }};
      if (spec.points) one.paths = function () { return null; };
      if (s.scale) {
        one.scale = s.scale;
        scales[s.scale] = {range: [0, 100]};
        axes.push({scale: s.scale, side: 1, label: s.scale, grid: {show: false}});
      }
      series.push(one);
    });
    var width = Math.max(320, Math.min(holder.clientWidth || 900, 1100));
    var opts = {width: width, height: 260, scales: scales, axes: axes, series: series, legend: {live: true}};
    new uPlot(opts, [spec.x].concat(spec.series.map(function (s) { return s.values; })), holder);
    holder.setAttribute("data-drawn", String(spec.series.length));
  }
  (data.charts || []).forEach(chart);

  // --- compare --------------------------------------------------------------------------------------------
  if (data.page === "compare") {
    var pickA = document.getElementById("run-a"), pickB = document.getElementById("run-b");
    var params = new URLSearchParams(window.location.search);
    [pickA, pickB].forEach(function (pick) {
      data.runs.slice().reverse().forEach(function (r) {
        pick.appendChild(el("option", {value: r.run_id}, r.run_id + " \u00b7 " + (r.status || "?") + " \u00b7 " + r.started));
      });
    });
    var ids = data.runs.map(function (r) { return r.run_id; });
    function chosen(name, fallback) {
      var v = params.get(name);
      return ids.indexOf(v) >= 0 ? v : fallback;
    }
    pickA.value = chosen("a", ids.length > 1 ? ids[ids.length - 2] : (ids[0] || ""));
    pickB.value = chosen("b", ids[ids.length - 1] || "");

    var renderCompare = function () {
      var a = pickA.value, b = pickB.value;
      var table = document.getElementById("compare-table");
      var head = table.tHead, tbody = table.tBodies[0];
      head.textContent = ""; tbody.textContent = "";
      document.getElementById("compare-empty").hidden = Boolean(a && b);
      if (!a || !b) return;
      var fileOf = {};
      data.runs.forEach(function (r) { fileOf[r.run_id] = r.file; });
      var hr = el("tr"), hr2 = el("tr");
      hr.appendChild(el("th", {rowspan: "2"}, "scenario"));
      [["A", a], ["B", b]].forEach(function (p) {
        var th = el("th", {rowspan: "2"}, p[0] + ": ");
        th.appendChild(el("a", {href: "runs/" + fileOf[p[1]] + ".html", "class": "run-" + p[0].toLowerCase()}, p[1]));
        hr.appendChild(th);
      });
      data.metrics.forEach(function (m) {
        hr.appendChild(el("th", {colspan: "3", "class": "group"}, m.label));
        ["A", "B", "B\u2212A"].forEach(function (w) { hr2.appendChild(el("th", {"class": "sub"}, w)); });
      });
      head.appendChild(hr);
      head.appendChild(hr2);
      var da = data.drills[a] || {}, db = data.drills[b] || {};
      var keys = Object.keys(da).concat(Object.keys(db).filter(function (k) { return !(k in da); })).sort();
      keys.forEach(function (key) {
        var ea = da[key], eb = db[key];
        var tr = el("tr", {"data-scenario": key});
        var name = el("td");
        name.appendChild(el("a", {href: "scenarios/" + (ea || eb).slug + ".html"}, key));
        tr.appendChild(name);
        [ea, eb].forEach(function (e) {
          tr.appendChild(el("td", {"class": "status-cell"}, e ? e.status + " · " + e.passed + "/" + e.n + " passed" : "not run"));
        });
        data.metrics.forEach(function (m) {
          var va = ea ? ea[m.key] : null, vb = eb ? eb[m.key] : null;
          tr.appendChild(el("td", {"class": "num a m-" + m.key}, fmt(va, m.count)));
          tr.appendChild(el("td", {"class": "num b m-" + m.key}, fmt(vb, m.count)));
          var delta = (typeof va === "number" && typeof vb === "number") ? vb - va : null;
          var cell = el("td", {"class": "num d m-" + m.key}, delta === null ? "\u2014" : (delta > 0 ? "+" : "") + fmt(delta, m.count));
          if (delta) cell.classList.add(delta > 0 ? "worse" : "better");
          tr.appendChild(cell);
        });
        tbody.appendChild(tr);
      });
      try {
        window.history.replaceState(null, "", "?a=" + encodeURIComponent(a) + "&b=" + encodeURIComponent(b));
      } catch (ignored) { /* a file:// page may refuse; the choice still shows */ }
      table.setAttribute("data-pair", a + " " + b);
    };
    pickA.addEventListener("change", renderCompare);
    pickB.addEventListener("change", renderCompare);
    renderCompare();
  }

  // --- the live run ---------------------------------------------------------------------------------------
  var live = document.getElementById("live");
  function showLive(s) {
    live.textContent = "";
    live.setAttribute("data-state", s.state);
    if (s.state === "idle") { live.hidden = true; return; }
    live.hidden = false;
    if (!s.live) {
      live.appendChild(el("p", {"class": "stale"}, "Not live: " + s.message));
      return;
    }
    var h = el("h2", {}, "Live: run " + s.run_id);
    live.appendChild(h);
    var dl = el("dl", {"class": "facts"});
    function fact(name, value, cls) {
      dl.appendChild(el("dt", {}, name));
      dl.appendChild(el("dd", {"class": cls}, value));
    }
    var sc = s.scenario;
    fact("scenario", sc ? sc.name : "starting", "live-scenario");
    fact("feature", sc ? sc.feature : "\u2014", "live-feature");
    fact("phase", s.phase || "\u2014", "live-phase");
    var f = s.fault;
    fact("fault", f ? f.kind + (f.dc ? " on " + f.dc : "") + " (" + f.state + ")" : "none yet", "live-fault");
    var done = Object.keys(s.finished || {}).map(function (k) { return s.finished[k] + " " + k; }).join(", ");
    fact("finished", done || "none yet", "live-finished");
    if (s.aborted) fact("aborted", "yes: the run is healing and stopping", "live-aborted");
    live.appendChild(dl);
    if (s.verdicts && s.verdicts.length) {
      var ul = el("ul", {"class": "verdicts"});
      s.verdicts.forEach(function (v) { ul.appendChild(el("li", {"class": "v-" + v.status}, v.status + ": " + v.summary)); });
      live.appendChild(ul);
    }
    var ol = el("ol", {"class": "recent"});
    (s.recent || []).forEach(function (e) {
      var t = typeof e.t === "number" ? new Date(e.t * 1000).toISOString().slice(11, 19) : "";
      ol.appendChild(el("li", {}, t + " " + e.event));
    });
    live.appendChild(ol);
  }
  if (body.getAttribute("data-live") === "1") {
    var period = parseInt(body.getAttribute("data-poll"), 10) || 2000;
    var poll = function () {
      fetch(root + "api/live.json", {cache: "no-store"})
        .then(function (r) { return r.json(); })
        .then(showLive)
        .catch(function () { live.hidden = false; live.textContent = "The dashboard server does not answer."; })
        .then(function () { window.setTimeout(poll, period); });
    };
    poll();
  }
}());
