// What a total leaves after the amounts typed in a form's rows (a recommendation's proposals against the
// money available), kept current as the person types. The page says the same on load without this script.
(function () {
  "use strict";
  function update(box) {
    var total = parseInt(box.dataset.total, 10) || 0;
    var parts = (box.dataset.subtract || "").split(".");
    var pattern = new RegExp("^" + parts[0] + "\\.\\d+\\." + parts[1] + "$");
    var used = 0;
    document.querySelectorAll("input[name]").forEach(function (input) {
      if (pattern.test(input.name)) {
        var n = parseInt(input.value.replace(/[\s\u00a0]/g, ""), 10);
        if (!isNaN(n)) { used += n; }
      }
    });
    var left = total - used;
    var grouped = Math.abs(left).toString().replace(/\B(?=(\d{3})+(?!\d))/g, "\u00a0");
    box.querySelector(".left-value").textContent = (left < 0 ? "-" : "") + grouped + "\u00a0kr";
    box.classList.toggle("over", left < 0);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("p.left[data-subtract]").forEach(function (box) {
      document.addEventListener("input", function () { update(box); });
    });
  });
})();
