// netdiag mesh page: re-fetch the server-rendered fragment every interval; show cell details.
(function () {
  "use strict";
  var body = document.body;
  var every = parseInt(body.getAttribute("data-refresh-ms"), 10) || 10000;
  var mesh = document.getElementById("mesh");
  var status = document.getElementById("status");
  var detail = document.getElementById("detail");

  function refresh() {
    fetch("/fragment", { cache: "no-store" })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.text();
      })
      .then(function (html) {
        mesh.innerHTML = html;
        body.setAttribute("data-updates", String(parseInt(body.getAttribute("data-updates"), 10) + 1));
        status.textContent = "updated " + new Date().toLocaleTimeString();
        status.className = "";
      })
      .catch(function (err) {
        status.textContent = "refresh failed: " + err.message;
        status.className = "stale";
      })
      .finally(function () { setTimeout(refresh, every); });
  }

  mesh.addEventListener("mouseover", function (ev) {
    var cell = ev.target.closest("td[title]");
    if (!cell) { detail.hidden = true; return; }
    detail.textContent = cell.getAttribute("title");
    detail.hidden = false;
  });
  mesh.addEventListener("mouseleave", function () { detail.hidden = true; });
  setTimeout(refresh, every);
})();
