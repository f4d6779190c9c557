// Portico admin console: the article editor's live preview, and the theme editor's colour fields. Without
// this file the "Preview" button sends the form and the page comes back with the preview; each colour has
// a colour picker and a text field, and the server takes the one that was changed.
(function () {
  "use strict";
  var summary = document.querySelector(".error-summary");
  if (summary) { summary.focus(); }

  // Live preview: the Markdown goes to the kb service's renderer (the admin API's preview operation) and
  // its sanitised HTML, the same readers get, replaces the preview. Only the newest answer is shown.
  var form = document.querySelector("form[data-preview-url]");
  var body = form ? form.querySelector("textarea[data-markdown]") : null;
  var preview = document.getElementById("article-preview");
  var status = document.getElementById("preview-status");
  if (form && body && preview && window.fetch) {
    var timer = null;
    var asked = 0;
    var show = function (html) {
      if (html) {
        preview.innerHTML = html;  // sanitised by the kb service (services/kb/domain.py render_markdown)
      } else {
        preview.textContent = "";
        var empty = document.createElement("p");
        empty.className = "muted";
        empty.textContent = preview.getAttribute("data-empty") || "";
        preview.appendChild(empty);
      }
    };
    var refresh = function () {
      var mine = ++asked;
      fetch(form.getAttribute("data-preview-url"), {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "Accept": "application/json"},
        body: JSON.stringify({body: body.value})
      }).then(function (response) {
        return response.ok ? response.json() : Promise.reject(response.status);
      }).then(function (answer) {
        if (mine === asked) {
          show(answer.body_html);
          if (status) { status.textContent = ""; }
        }
      }).catch(function () {
        if (mine === asked && status) { status.textContent = status.getAttribute("data-failed") || ""; }
      });
    };
    body.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, 400);
    });
  }

  // Theme colours: the picker and the text field show the same colour.
  Array.prototype.forEach.call(document.querySelectorAll("[data-colour]"), function (group) {
    var picker = group.querySelector("input[type=color]");
    var text = group.querySelector("input[type=text]");
    if (!picker || !text) { return; }
    picker.addEventListener("input", function () { text.value = picker.value; });
    text.addEventListener("input", function () {
      if (/^#[0-9a-fA-F]{6}$/.test(text.value)) { picker.value = text.value.toLowerCase(); }
    });
  });
})();
