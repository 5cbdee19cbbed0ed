// The weekly report's "Print" button: the one script of the dashboard, and optional
// (Ctrl + P does the same). Shown only where it works.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var button = document.getElementById("print");
  if (!button) { return; }
  button.hidden = false;
  button.addEventListener("click", function () { window.print(); });
});
