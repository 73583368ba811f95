/* global document, window, setTimeout */
// Idle-session warning: shown two minutes before the portal signs the reader out (the server enforces it).
(function () {
  'use strict';
  var box = document.getElementById('session');
  if (!box) return;
  var idle = Number(box.getAttribute('data-idle-ms')) || 900000;
  var warnAfter = Math.max(idle - 120000, idle / 2);
  setTimeout(function () {
    box.classList.add('warn');
    var text = document.getElementById('session-text');
    if (text) text.textContent = 'You will be signed out in about two minutes. Press "Stay signed in" to keep reading.';
  }, warnAfter);
  setTimeout(function () {
    window.location.assign('/signed-out');
  }, idle);
})();
