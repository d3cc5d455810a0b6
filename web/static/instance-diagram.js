// Draws the instance's BPMN diagram with bpmn-js (vendored) and marks completed and current steps.
// A separate file, not inline script: the Content-Security-Policy allows scripts from this server only.
//
// The diagram is fitted to the page's width (its height follows, within the window), and can be zoomed,
// panned and shown on the whole screen: with the buttons above it, by dragging and Ctrl + scrolling, and from
// the keyboard when it has focus (arrow keys pan, + and - zoom, 0 fits it again).
(function () {
  "use strict";
  var el = document.getElementById("diagram");
  if (!el || !window.BpmnJS) { return; }
  var figure = el.closest("figure");
  var tools = document.getElementById("diagram-tools");
  var viewer = new window.BpmnJS({ container: el });
  var canvas;

  function fitWidth() {
    var inner = canvas.viewbox().inner;
    if (!inner.width) { return; }
    if (!document.fullscreenElement) {
      var scale = el.clientWidth / (inner.width + 40);
      var height = Math.max(320, Math.min(window.innerHeight * 0.8, (inner.height + 40) * scale));
      el.style.height = Math.round(height) + "px";
    }
    canvas.resized();
    canvas.zoom("fit-viewport", "auto");
  }
  function zoomBy(factor) { canvas.zoom(canvas.zoom() * factor); }

  fetch(el.dataset.src, { credentials: "same-origin" })
    .then(function (response) {
      if (!response.ok) { throw new Error(response.status); }
      return response.text();
    })
    .then(function (xml) { return viewer.importXML(xml); })
    .then(function () {
      canvas = viewer.get("canvas");
      var registry = viewer.get("elementRegistry");
      function mark(ids, cls) {
        JSON.parse(ids).forEach(function (id) { if (registry.get(id)) { canvas.addMarker(id, cls); } });
      }
      mark(el.dataset.done, "step-done");
      mark(el.dataset.current, "step-current");
      fitWidth();
      el.setAttribute("tabindex", "0");
      el.addEventListener("keydown", function (event) {
        var step = 60;
        var moves = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
        if (moves[event.key]) {
          canvas.scroll({ dx: moves[event.key][0], dy: moves[event.key][1] });
        } else if (event.key === "+" || event.key === "=") {
          zoomBy(1.25);
        } else if (event.key === "-") {
          zoomBy(0.8);
        } else if (event.key === "0") {
          fitWidth();
        } else {
          return;
        }
        event.preventDefault();
      });
      if (tools) {
        tools.hidden = false;
        tools.querySelector("[data-zoom=in]").addEventListener("click", function () { zoomBy(1.25); });
        tools.querySelector("[data-zoom=out]").addEventListener("click", function () { zoomBy(0.8); });
        tools.querySelector("[data-zoom=fit]").addEventListener("click", fitWidth);
        var full = tools.querySelector("[data-zoom=full]");
        if (figure && figure.requestFullscreen) {
          full.addEventListener("click", function () {
            if (document.fullscreenElement) { document.exitFullscreen(); } else { figure.requestFullscreen(); }
          });
          document.addEventListener("fullscreenchange", function () {
            var on = document.fullscreenElement === figure;
            full.setAttribute("aria-pressed", on ? "true" : "false");
            el.style.height = on ? "" : el.style.height;
            window.setTimeout(fitWidth, 50);
          });
        } else {
          full.hidden = true;
        }
      }
      window.addEventListener("resize", function () { window.setTimeout(fitWidth, 50); });
      el.setAttribute("data-rendered", "true");
    })
    .catch(function () {
      el.textContent = el.dataset.error;
      el.setAttribute("data-rendered", "error");
    });
}());
