// Draws the instance's BPMN diagram with bpmn-js (vendored) and marks completed and current steps.
// A separate file, not inline script: the Content-Security-Policy allows scripts from this server only.
(function () {
  "use strict";
  var el = document.getElementById("diagram");
  if (!el || !window.BpmnJS) { return; }
  var viewer = new window.BpmnJS({ container: el });
  fetch(el.dataset.src, { credentials: "same-origin" })
    .then(function (response) {
      if (!response.ok) { throw new Error(response.status); }
      return response.text();
    })
    .then(function (xml) { return viewer.importXML(xml); })
    .then(function () {
      var canvas = viewer.get("canvas");
      var registry = viewer.get("elementRegistry");
      canvas.zoom("fit-viewport");
      function mark(ids, cls) {
        JSON.parse(ids).forEach(function (id) { if (registry.get(id)) { canvas.addMarker(id, cls); } });
      }
      mark(el.dataset.done, "step-done");
      mark(el.dataset.current, "step-current");
      el.setAttribute("data-rendered", "true");
    })
    .catch(function () {
      el.textContent = el.dataset.error;
      el.setAttribute("data-rendered", "error");
    });
}());
