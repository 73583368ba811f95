/* global document, window, setTimeout */
// Idle-session warning: shown two minutes before the portal signs the reader out (halfway for short idle
// times); at the idle time the page signs out (ending the session on the server) and shows the signed-out page. The server
// enforces the timeout itself as well.
(function () {
  'use strict';
  var box = document.getElementById('session');
  if (!box) return;
  var idle = Number(box.getAttribute('data-idle-ms')) || 900000;
  var warnAfter = Math.max(idle - 120000, idle / 2);
  setTimeout(function () {
    box.classList.add('warn');
    var text = document.getElementById('session-text');
    if (text) text.textContent = 'You will soon be signed out because of inactivity. Press "Stay signed in" to keep reading.';
  }, warnAfter);
  setTimeout(function () {
    // Sign out on the server too, through the page's own sign-out form: the server's idle clock started at
    // the page's last request, a little after this timer, so for a moment the session would outlive the page.
    var signout = document.querySelector('form[action="/signout"]');
    if (signout) signout.submit();
    else window.location.assign('/signed-out');
  }, idle);
})();
