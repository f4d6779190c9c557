// Sign-in pages: small enhancements only; every form works without this file.
(function () {
  "use strict";
  // After a refused form, the error summary takes the focus, so that it is read out first (GOV.UK pattern).
  var summary = document.querySelector(".error-summary");
  if (summary) { summary.focus(); }

  // "Send a new code" after the limit on codes: offered again once the wait is over.
  var resend = document.getElementById("resend");
  var wait = resend ? parseInt(resend.getAttribute("data-wait-seconds") || "0", 10) : 0;
  if (resend && wait > 0) {
    resend.disabled = true;
    window.setTimeout(function () { resend.disabled = false; }, Math.min(wait, 86400) * 1000);
  }
})();
