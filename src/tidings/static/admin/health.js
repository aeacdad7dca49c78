// The Health page's live charts (uPlot): poll the series endpoint every
// 2 s while the tab is visible and redraw. No inline script (strict CSP).
(function () {
  "use strict";
  var EVERY_MS = 2000;
  var COLORS = ["#0969da", "#1a7f37", "#9a6700", "#8250df", "#cf222e", "#1b7c83"];
  var charts = {};

  function section() { return document.querySelector("[data-series]"); }

  function width(el) { return Math.max(280, el.clientWidth); }

  function series(label, color, unit, dash) {
    return {
      label: label, stroke: color, width: 2, spanGaps: true, dash: dash,
      fill: color + "1a",
      value: function (u, v) { return v == null ? "—" : (Math.round(v * 100) / 100) + unit; }
    };
  }

  var WHOLE = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];

  // whole: counts (connections, jobs) get whole-number ticks only
  function axes(unit, whole) {
    var y = { size: 70, values: function (u, ticks) { return ticks.map(function (t) { return t + unit; }); } };
    if (whole) { y.incrs = WHOLE; }
    return [{}, y];
  }

  // name -> [series options, (data) -> uPlot data]
  var KINDS = {
    rates: [[series("Published", COLORS[0], "/s"), series("Delivered", COLORS[1], "/s", [6, 4])], "/s",
      function (s) { return [s.at, s.published_s, s.delivered_s]; }],
    latency: [[series("p50", COLORS[1], " ms"), series("p95", COLORS[2], " ms")], " ms",
      function (s) { return [s.at, s.p50_ms, s.p95_ms]; }],
    connections: [[series("Connections", COLORS[3], "")], "",
      function (s) { return [s.at, s.connections]; }, true],
    queue: [[series("Queued jobs", COLORS[4], "")], "",
      function (s) { return [s.queue_at, s.queue]; }, true]
  };

  function draw(name, el, opts, data) {
    var chart = charts[name];
    if (chart && chart.series.length === opts.series.length) {
      chart.setData(data);
      return;
    }
    if (chart) { chart.destroy(); }
    el.textContent = "";
    opts.width = width(el);
    opts.height = 200;
    charts[name] = new uPlot(opts, data, el);
  }

  function drawKind(name, s) {
    var el = document.querySelector('[data-chart="' + name + '"]');
    if (!el) { return; }
    var kind = KINDS[name], data = kind[2](s);
    if (!data[0].length) {
      if (!charts[name]) { el.innerHTML = '<p class="waiting">Collecting the first samples…</p>'; }
      return;
    }
    draw(name, el, { series: [{}].concat(kind[0]), axes: axes(kind[1], kind[3]), scales: { x: { time: true } } }, data);
    el.setAttribute("data-points", String(data[0].length));
  }

  function drawNodes(nodes) {
    var card = document.querySelector("[data-nodes-card]");
    var el = document.querySelector('[data-chart="nodes"]');
    if (!card || !el) { return; }
    var withData = (nodes || []).filter(function (n) { return n.at.length; });
    card.hidden = withData.length < 2;  // one process: the rates chart says it all
    if (card.hidden) { return; }
    var tables = withData.map(function (n) { return [n.at, n.published_series]; });
    var data = uPlot.join(tables);
    var opts = {
      series: [{}].concat(withData.map(function (n, i) {
        return series(n.node + (n["this"] ? " (this)" : ""), COLORS[i % COLORS.length], "/s");
      })),
      axes: axes("/s"), scales: { x: { time: true } }
    };
    draw("nodes", el, opts, data);
    el.setAttribute("data-series-count", String(withData.length));
  }

  function peak(values) {
    return (values || []).reduce(function (m, v) { return v != null && v > m ? v : m; }, 0);
  }

  function render(body) {
    var root = section();
    var s = body.series;
    Object.keys(KINDS).forEach(function (name) { drawKind(name, s); });
    drawNodes(body.nodes);
    root.setAttribute("data-updated", String(body.now));
    root.setAttribute("data-published-peak", String(peak(s.published_s)));
  }

  function stalled(on) {
    var badge = document.querySelector(".live-badge");
    if (badge) { badge.classList.toggle("stalled", on); }
  }

  function poll() {
    var root = section();
    if (!root || typeof uPlot === "undefined") { return; }
    if (document.hidden) { setTimeout(poll, EVERY_MS); return; }
    fetch(root.getAttribute("data-series"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (answer) {
        if (answer.redirected || !answer.ok) { throw new Error("status " + answer.status); }
        return answer.json();
      })
      .then(function (body) { render(body); stalled(false); })
      .catch(function () { stalled(true); })
      .then(function () { setTimeout(poll, EVERY_MS); });
  }

  window.addEventListener("resize", function () {
    Object.keys(charts).forEach(function (name) {
      var el = document.querySelector('[data-chart="' + name + '"]');
      if (el) { charts[name].setSize({ width: width(el), height: 200 }); }
    });
  });
  document.addEventListener("DOMContentLoaded", poll);
})();
