// The case page while a command awaits the branch's reply: reload it every
// few seconds, for at most two minutes. Ours; optional (a reload by hand
// shows the same), and nothing else on the page needs script.
"use strict";
(function () {
  var key = "posgw-case-reloads:" + location.pathname;
  var done = Number(sessionStorage.getItem(key) || "0");
  if (done >= 40) { return; }
  setTimeout(function () {
    sessionStorage.setItem(key, String(done + 1));
    location.reload();
  }, 3000);
})();
