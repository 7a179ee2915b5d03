// Auto-refresh for the ops page: a file, not inline, so the CSP can say script-src 'self'.
// The page asks for it with <body data-refresh="N"> (the refresh filter, N seconds, 0 = off).
// It never reloads under someone's hands: not while a field has focus or a Drop confirmation
// is open, and it tries again a second later.
(function () {
  "use strict";
  var seconds = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  if (!(seconds > 0)) { return; }
  function busy() {
    var active = document.activeElement;
    var typing = active && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);
    return typing || document.querySelector("details.confirm[open]") !== null;
  }
  function tick() {
    if (busy()) { window.setTimeout(tick, 1000); return; }
    window.location.reload();
  }
  window.setTimeout(tick, seconds * 1000);
})();
