// Portico composer: says what is wrong before anything is sent (too many files, a file too large or of a
// type we do not accept, a message too long), and sends with fetch to the JSON API so that whatever the
// server still refuses is shown without a reload, with the text AND the files kept in the form.
// The portal's limits and the words (in the page's language) come from the form's data- attributes.
// Without this file the form is a plain multipart POST to the page, which answers with the same words.
(function () {
  "use strict";
  if (!window.fetch || !window.FormData || !window.DataTransfer) { return; }

  var FILE_ERRORS = ["too_many_attachments", "attachment_too_large", "attachment_empty",
    "attachment_type_not_allowed", "attachment_malformed", "payload_too_large"];
  var BODY_ERRORS = ["message_empty", "message_too_long"];

  function fill(template, values) {
    return String(template || "").replace(/\{(\w+)\}/g, function (whole, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? values[key] : whole;
    });
  }

  function setup(form) {
    var d = form.dataset;
    var lang = document.documentElement.lang || undefined;
    var number = new Intl.NumberFormat(lang);
    var limits = { chars: +d.maxChars, files: +d.maxFiles, bytes: +d.maxBytes };
    var extensions = (d.extensions || "").split(",").filter(Boolean);
    var words = {};
    try { words = JSON.parse(d.words || "{}"); } catch (e) { words = {}; }
    var body = form.querySelector("#composer-body");
    var subject = form.querySelector("#composer-subject");
    var input = form.querySelector("#composer-files");
    var list = form.querySelector("#composer-file-list");
    var counter = form.querySelector("#composer-body-count");
    var summary = form.querySelector("#composer-summary");
    var send = form.querySelector("#composer-send");
    var status = form.querySelector("#composer-status");
    var key = (form.querySelector("input[name=idempotency_key]") || {}).value || "";
    var chosen = [];
    var sending = false;

    function size(bytes) {
      if (bytes < 1024) { return number.format(bytes) + " B"; }
      if (bytes < 1024 * 1024) { return number.format(Math.round(bytes / 102.4) / 10) + " KB"; }
      return number.format(Math.round(bytes / 104857.6) / 10) + " MB";
    }

    // -- errors next to their field, and the summary at the top that links to them ------------------
    function fieldParts(name) {
      return { control: form.querySelector("#composer-" + name), error: form.querySelector("#composer-" + name + "-error") };
    }

    function setError(name, text) {
      var parts = fieldParts(name);
      if (!parts.error || !parts.control) { return; }
      var ids = (parts.control.getAttribute("aria-describedby") || "").split(" ").filter(function (id) {
        return id && id !== parts.error.id;
      });
      parts.error.textContent = text || "";
      parts.error.hidden = !text;
      parts.control.closest(".field").classList.toggle("has-error", !!text);
      if (text) {
        ids.push(parts.error.id);
        parts.control.setAttribute("aria-invalid", "true");
      } else {
        parts.control.removeAttribute("aria-invalid");
      }
      parts.control.setAttribute("aria-describedby", ids.join(" "));
    }

    function showSummary(problems) {
      var items = summary.querySelector("ul");
      items.textContent = "";
      problems.forEach(function (problem) {
        var item = document.createElement("li");
        if (problem.field) {
          var link = document.createElement("a");
          link.href = "#composer-" + problem.field;
          link.textContent = problem.text;
          item.appendChild(link);
        } else {
          item.textContent = problem.text;
        }
        items.appendChild(item);
      });
      summary.hidden = problems.length === 0;
    }

    // -- what is wrong, before sending ------------------------------------------------------------
    function bodyProblem(submitting) {
      var count = body.value.length;
      if (count > limits.chars) {
        return fill(d.msgTooLong, { count: number.format(count), max: number.format(limits.chars) });
      }
      if (submitting && !body.value.trim()) { return d.msgEmpty; }
      return "";
    }

    function fileProblems() {
      var problems = [];
      if (chosen.length > limits.files) {
        problems.push(fill(d.msgTooMany, { count: number.format(chosen.length), max: number.format(limits.files) }));
      }
      chosen.forEach(function (file) {
        var dot = file.name.lastIndexOf(".");
        var extension = dot > 0 ? file.name.slice(dot + 1).toLowerCase() : "";
        if (extension && extensions.indexOf(extension) === -1) {
          problems.push(fill(d.msgType, { name: file.name, types: d.types }));
        } else if (file.size > limits.bytes) {
          // "3 MB, at most 3 MB" says nothing: where the rounded sizes agree, the bytes.
          var exact = size(file.size) === size(limits.bytes);
          problems.push(fill(d.msgTooLarge, {
            name: file.name, size: exact ? number.format(file.size) + " B" : size(file.size),
            max: exact ? number.format(limits.bytes) + " B" : d.maxSizeText }));
        } else if (file.size === 0) {
          problems.push(fill(d.msgEmptyFile, { name: file.name }));
        }
      });
      return problems.join(" ");
    }

    // Each field is checked when it changes (emptiness only once Send was pressed); the summary then
    // lists the errors shown, so a refusal the server rendered stays until its field changes.
    var tried = !summary.hidden;

    function checkField(name) {
      var text = "";
      if (name === "subject") { text = tried && !subject.value.trim() ? d.msgNoSubject : ""; }
      if (name === "body") { text = bodyProblem(tried); }
      if (name === "files") { text = fileProblems(); }
      setError(name, text);
      return text ? [{ field: name, text: text }] : [];
    }

    function shownProblems() {
      return ["subject", "body", "files"].map(function (name) {
        var error = form.querySelector("#composer-" + name + "-error");
        return error && !error.hidden && error.textContent ? { field: name, text: error.textContent } : null;
      }).filter(Boolean);
    }

    function changed(name) {
      checkField(name);
      if (tried) { showSummary(shownProblems()); }
    }

    function checkAll() {
      tried = true;
      var problems = [];
      if (subject) { problems = problems.concat(checkField("subject")); }
      problems = problems.concat(checkField("body"));
      if (input) { problems = problems.concat(checkField("files")); }
      showSummary(problems);
      return problems;
    }

    function count() {
      if (!counter) { return; }
      counter.hidden = false;
      counter.textContent = fill(d.msgCounter, { count: number.format(body.value.length), max: number.format(limits.chars) });
      counter.classList.toggle("over", body.value.length > limits.chars);
    }

    // -- the chosen files: added to on every pick, each removable ------------------------------------
    function syncFiles() {
      var transfer = new DataTransfer();
      chosen.forEach(function (file) { transfer.items.add(file); });
      input.files = transfer.files;
      list.textContent = "";
      chosen.forEach(function (file, index) {
        var item = document.createElement("li");
        var name = document.createElement("span");
        name.className = "name";
        name.textContent = file.name;
        var weight = document.createElement("span");
        weight.className = "size";
        weight.textContent = size(file.size);
        var remove = document.createElement("button");
        remove.type = "button";
        remove.className = "link remove";
        remove.textContent = d.msgRemoveShort;
        remove.setAttribute("aria-label", fill(d.msgRemove, { name: file.name }));
        remove.addEventListener("click", function () {
          chosen.splice(index, 1);
          syncFiles();
          changed("files");
          input.focus();
        });
        item.appendChild(name);
        item.appendChild(weight);
        item.appendChild(remove);
        list.appendChild(item);
      });
      list.hidden = chosen.length === 0;
    }

    if (input) {
      input.addEventListener("change", function () {
        Array.prototype.forEach.call(input.files, function (file) {
          var known = chosen.some(function (other) {
            return other.name === file.name && other.size === file.size && other.lastModified === file.lastModified;
          });
          if (!known) { chosen.push(file); }
        });
        syncFiles();
        changed("files");
      });
    }
    body.addEventListener("input", function () { count(); changed("body"); });
    if (subject) { subject.addEventListener("input", function () { changed("subject"); }); }
    count();

    // -- sending ----------------------------------------------------------------------------------
    function refused(answer) {
      var code = answer && answer.error;
      // `other`: a refusal the page has no words for (in English the API's message says it).
      var known = words[code] || (code && words.other) || null;
      var text = known && known.text ? known.text + (known.detail && answer.message ? " " + answer.message : "")
        : (answer && answer.message) || d.msgNetwork;
      var field = null;
      if (FILE_ERRORS.indexOf(code) !== -1 && input) { field = "files"; }
      else if (BODY_ERRORS.indexOf(code) !== -1) { field = "body"; }
      else if (code === "invalid_request" && subject && /subject/i.test(answer.message || "")) { field = "subject"; }
      if (field) { setError(field, text); }
      showSummary([{ field: field, text: text }]);
      summary.focus();
    }

    function done(answer) {
      var id = answer.conversation_id || (answer.conversation && answer.conversation.id);
      var target = fill(d.next, { id: id });
      var anchor = answer.message && answer.message.id ? "#message-" + answer.message.id : "";
      if (target === location.pathname) {
        history.replaceState(null, "", target + anchor);
        location.reload();
      } else {
        location.assign(target + anchor);
      }
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (sending) { return; }
      var problems = checkAll();
      if (problems.length) {
        summary.focus();
        return;
      }
      var data = new FormData();
      if (subject) { data.append("subject", subject.value); }
      data.append("body", body.value);
      chosen.forEach(function (file) { data.append("files", file, file.name); });
      sending = true;
      send.disabled = true;
      status.textContent = d.msgSending;
      fetch(d.api, { method: "POST", body: data, credentials: "same-origin",
                     headers: { "Accept": "application/json", "Idempotency-Key": key } })
        .then(function (response) {
          return response.json().catch(function () { return {}; }).then(function (answer) {
            if (response.ok) { done(answer); return; }
            refused(answer);
          });
        })
        .catch(function () { refused(null); })
        .then(function () {
          sending = false;
          send.disabled = false;
          status.textContent = "";
        });
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("form[data-composer]"), setup);
})();
