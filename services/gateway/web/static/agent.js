// Portico agent workspace: the redaction dialog, and an early warning when the customer writes while the
// agent is typing an answer. Without JavaScript the "Redact" link opens a confirmation page, and the
// server warns when the answer is sent (the form's `seen_message`).
(function () {
  "use strict";

  // Redaction: the same confirmation as the page behind the link, in a modal dialog.
  var dialog = document.getElementById("redact-dialog");
  if (dialog && typeof dialog.showModal === "function") {
    var form = document.getElementById("redact-dialog-form");
    var quote = document.getElementById("redact-dialog-quote");
    var cancel = document.getElementById("redact-dialog-cancel");
    var opener = null;
    document.addEventListener("click", function (event) {
      var link = event.target.closest ? event.target.closest("a[data-redact]") : null;
      if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) {
        return;
      }
      event.preventDefault();
      opener = link;
      form.setAttribute("action", link.getAttribute("href"));
      var message = document.getElementById(link.getAttribute("data-message") || "");
      var body = message ? message.querySelector(".body") : null;
      quote.textContent = body ? body.textContent.slice(0, 600) : "";
      quote.hidden = !quote.textContent;
      dialog.showModal();
      cancel.focus();  // the safe choice first: erasing takes a deliberate move
    });
    cancel.addEventListener("click", function () { dialog.close(); });
    dialog.addEventListener("close", function () {
      if (opener && document.body.contains(opener)) {
        opener.focus();
      }
    });
  }

  // A customer message that arrives (live.js swaps the timeline in) while an answer is being typed.
  var reply = document.querySelector("form[data-reply-form]");
  if (!reply) {
    return;
  }
  var seen = reply.querySelector("[data-seen-message]");
  var warning = document.getElementById("reply-newer-live");
  var text = reply.querySelector("textarea");
  document.addEventListener("portico:live-updated", function () {
    var timeline = document.getElementById("timeline");
    var newest = timeline ? timeline.getAttribute("data-newest-customer") : "";
    if (!seen || !newest || newest === seen.value) {
      return;
    }
    // The message is on the page now: the agent is told, so the server need not stop the answer for it.
    seen.value = newest;
    if (warning && text && text.value.trim()) {
      warning.textContent = "";
      var title = document.createElement("p");
      var strong = document.createElement("strong");
      strong.textContent = warning.getAttribute("data-title") || "";
      title.appendChild(strong);
      var words = document.createElement("p");
      words.textContent = warning.getAttribute("data-text") || "";
      warning.appendChild(title);
      warning.appendChild(words);
    }
  });
})();
