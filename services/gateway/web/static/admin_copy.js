// Admin console: a "Copy" button beside a value shown once (a new secret, an API key, a password).
// Without JavaScript the button stays hidden and the read-only field is selected and copied by hand.
(function () {
  "use strict";

  function say(status, text) {
    if (status) { status.textContent = text; }
  }

  function copy(button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    var status = document.getElementById(button.getAttribute("data-copy") + "-status");
    if (!field) { return; }
    field.focus();
    field.select();
    var done = function () { say(status, button.getAttribute("data-copied")); };
    var failed = function () {
      // The older way, for a browser without the asynchronous clipboard (or without permission).
      try {
        if (document.execCommand("copy")) { done(); return; }
      } catch (ignored) { /* falls through to the words */ }
      say(status, button.getAttribute("data-copy-failed"));
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(field.value).then(done, failed);
    } else {
      failed();
    }
  }

  function start() {
    var buttons = document.querySelectorAll("button[data-copy]");
    Array.prototype.forEach.call(buttons, function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { copy(button); });
    });
    var fields = document.querySelectorAll("input[data-copyable]");
    Array.prototype.forEach.call(fields, function (field) {
      field.addEventListener("focus", function () { field.select(); });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
