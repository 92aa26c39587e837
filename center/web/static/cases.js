// The case page while a command awaits the branch's reply: reload it every
// few seconds, for at most two minutes per awaited command. Ours; optional
// (a reload by hand shows the same), and nothing else on the page needs it.
"use strict";
(function () {
  var script = document.currentScript;
  var awaited = script ? script.getAttribute("data-awaiting") || "" : "";
  var key = "posgw-case-reloads:" + location.pathname + ":" + awaited;
  var done = Number(sessionStorage.getItem(key) || "0");
  if (done >= 40) { return; }
  setTimeout(function () {
    sessionStorage.setItem(key, String(done + 1));
    location.reload();
  }, 3000);
})();
