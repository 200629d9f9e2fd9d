// converge dashboard enhancements. Everything works without this file (numbers and tables are
// server-rendered); it adds charts (ECharts, from each .chart's data-option JSON), submits the
// filter form on change, and refreshes tiles when the server reports new data (server-sent
// events from the URL in <body data-live>; each tile re-fetches itself with htmx).
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  var charts = [];

  function initCharts(root) {
    if (!window.echarts) return;
    var els = root.querySelectorAll ? root.querySelectorAll(".chart[data-option]") : [];
    if (root.matches && root.matches(".chart[data-option]")) els = [root];
    Array.prototype.forEach.call(els, function (el) {
      if (el.getAttribute("data-ready")) return;
      var option;
      try { option = JSON.parse(el.getAttribute("data-option")); } catch (e) { return; }
      // The Content-Security-Policy refuses inline style attributes, which ECharts' HTML
      // tooltip is made of: draw tooltips in the chart instead.
      [].concat(option.tooltip || []).forEach(function (t) { t.renderMode = "richText"; });
      var chart = echarts.init(el, null, { renderer: "svg" });
      chart.setOption(option);
      el.setAttribute("data-ready", "1");
      charts.push(chart);
      // The table stood in for the chart; now the chart is there, fold it away.
      var table = el.nextElementSibling;
      if (table && table.hasAttribute("data-close-with-chart")) table.open = false;
    });
    charts = charts.filter(function (c) { return !c.isDisposed() && document.body.contains(c.getDom()); });
  }

  function resizeAll() { charts.forEach(function (c) { if (!c.isDisposed()) c.resize(); }); }

  function enhanceFilters() {
    var form = document.querySelector("form[data-filters]");
    if (!form) return;
    var range = form.elements["range"];
    var from = form.elements["from"], to = form.elements["to"];
    // A preset range ignores from/to, and an empty grain means auto: leave them out of the URL
    // so links stay short (and preset links stay relative to the day they are opened).
    function trim() {
      var custom = range && range.value === "custom";
      if (from) from.disabled = !custom;
      if (to) to.disabled = !custom;
      var grain = form.elements["grain"];
      if (grain) grain.disabled = grain.value === "";
    }
    function submit() {
      trim();
      if (form.requestSubmit) form.requestSubmit(); else form.submit();
    }
    [from, to].forEach(function (el) {
      if (!el) return;
      el.addEventListener("change", function () {
        if (range) range.value = "custom";
        if (from.value && to.value) submit();
      });
    });
    Array.prototype.forEach.call(form.querySelectorAll("select"), function (el) {
      el.addEventListener("change", submit);
    });
    form.addEventListener("submit", trim);
    // Back/forward cache: re-enable the fields when the page is shown again.
    window.addEventListener("pageshow", function () {
      Array.prototype.forEach.call(form.elements, function (el) { el.disabled = false; });
    });
  }

  // Other GET forms marked data-autosubmit (a page's own options) apply on change too.
  function autosubmit() {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-autosubmit] select"), function (el) {
      el.addEventListener("change", function () {
        if (el.form.requestSubmit) el.form.requestSubmit(); else el.form.submit();
      });
    });
  }

  function live() {
    var url = document.body.getAttribute("data-live");
    if (!url || !window.EventSource) return;
    var es = new EventSource(url);
    es.addEventListener("data", function () {
      document.body.dispatchEvent(new CustomEvent("converge-data"));
    });
  }

  function start() {
    if (window.htmx) {
      htmx.onLoad(initCharts); // runs for the page, then for every swapped-in tile
    } else {
      initCharts(document);
    }
    enhanceFilters();
    autosubmit();
    live();
    var t;
    window.addEventListener("resize", function () { clearTimeout(t); t = setTimeout(resizeAll, 150); });
    window.addEventListener("beforeprint", function () {
      Array.prototype.forEach.call(document.querySelectorAll("details.chart-table"), function (d) { d.open = true; });
      resizeAll();
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
