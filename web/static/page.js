// What every page does once loaded.
//
// After a form comes back with errors, focus goes to its error summary, so a screen reader reads what
// went wrong and the keyboard starts from the links to the fields (the summary has tabindex="-1").
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.getElementById("error-summary");
    if (summary) { summary.focus(); }
  });
})();

// On a narrow screen the tables of the pages (class "worklist") are shown one row as one block (see
// samflyt.css): each cell is then labelled with its column's header, copied here from the table's head.
// The roles keep the table a table for screen readers whatever the CSS display of its parts.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table.worklist").forEach(function (table) {
      var headers = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
        return th.textContent.trim();
      });
      table.setAttribute("role", "table");
      table.querySelectorAll("thead, tbody, tfoot").forEach(function (g) { g.setAttribute("role", "rowgroup"); });
      table.querySelectorAll("tr").forEach(function (tr) {
        tr.setAttribute("role", "row");
        Array.prototype.forEach.call(tr.children, function (cell, i) {
          if (cell.tagName === "TH") {
            cell.setAttribute("role", cell.getAttribute("scope") === "row" ? "rowheader" : "columnheader");
          } else {
            cell.setAttribute("role", "cell");
          }
          if (cell.parentNode.parentNode.tagName !== "THEAD" && headers[i] && !cell.hasAttribute("data-label")) {
            cell.setAttribute("data-label", headers[i]);
          }
        });
      });
    });
  });
})();
