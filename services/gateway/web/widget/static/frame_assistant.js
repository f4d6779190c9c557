// Portico chat widget, inside its frame: the virtual assistant (up to three articles from the knowledge
// base's search, then "Did that solve it?") and the hand-over to a person: the visitor's e-mail address
// or "continue without e-mail" when there is no session, then a conversation on the `chat` channel
// whose first message is the question and the articles offered. frame.js goes on from there.
(function () {
  "use strict";
  var P = window.PorticoFrame;
  var ui = P.panel;
  var state = P.state;
  var t = ui.t;
  var body = document.body;
  var base = "/api/v1/portals/" + encodeURIComponent(P.portal);
  var log = document.getElementById("log");
  var field = document.getElementById("message");
  var forms = 0;

  function problem(error) {
    ui.entry("assistant problem", t("assistant"), ui.say(error));
  }

  function ask(question) {
    ui.entry("visitor", t("you"), question);
    var searching = ui.entry("assistant pending", null, t("searching"));
    var path = base + "/kb/articles?limit=3&q=" + encodeURIComponent(question.slice(0, 200));
    return P.api("GET", path).then(function (page) {
      searching.remove();
      var articles = (page.articles || []).slice(0, 3);
      state.asked = { question: question, articles: articles.map(function (a) { return a.slug; }) };
      if (!articles.length) {
        return ui.fromTemplate("tpl-none");
      }
      var item = ui.fromTemplate("tpl-offer");
      var list = item.querySelector(".articles");
      articles.forEach(function (article) {
        var link = document.createElement("a");
        link.href = "/portals/" + encodeURIComponent(P.portal) + "/kb/" + encodeURIComponent(article.slug);
        link.target = "_blank";
        link.rel = "noopener";
        link.textContent = article.title;
        var li = document.createElement("li");
        li.appendChild(link);
        list.appendChild(li);
      });
      return item;
    }, function (error) {
      searching.remove();
      state.asked = { question: question, articles: [] };
      problem(error);
    });
  }

  function handOver() {
    if (!state.asked) {
      return null;
    }
    ui.showWho();
    var connecting = ui.entry("assistant pending", null, t("connecting"));
    return P.api("POST", base + "/widget/conversations", state.asked, { "Idempotency-Key": P.randomKey() })
      .then(function (reply) {
        connecting.remove();
        state.asked = null;
        state.conversationId = reply.conversation.id;
        ui.save();
        // The question is in the log already: the first message is not shown again.
        reply.conversation.messages.forEach(function (message) { state.shown[message.id] = true; });
        ui.entry("assistant", t("assistant"), t("connected"));
        ui.chatting(true);
        P.handedOver(); // frame.js: the live stream, which must know the new conversation
        field.focus();
      }, function (error) {
        connecting.remove();
        problem(error);
      });
  }

  // "No, I need a person": with a session, at once; else the e-mail form (or only "without e-mail").
  function person() {
    if (ui.hasSession()) {
      return handOver();
    }
    if (body.dataset.emailAccess !== "yes" && body.dataset.anonymous !== "yes") {
      ui.fromTemplate("tpl-sign-in");
      return null;
    }
    var item = ui.fromTemplate("tpl-contact");
    forms += 1;
    // Ids of their own for this copy of the form: the label, hint and error are tied to the field by them.
    Array.prototype.forEach.call(item.querySelectorAll("[data-id]"), function (element) {
      element.id = "contact-" + element.getAttribute("data-id") + "-" + forms;
    });
    var email = item.querySelector("input[type=email]");
    if (email) {
      item.querySelector("label").htmlFor = email.id;
      email.setAttribute("aria-describedby", "contact-hint-" + forms + " contact-error-" + forms);
      email.focus();
    } else {
      item.querySelector("button").focus();
    }
    return null;
  }

  function contact(form) {
    var email = form.querySelector("input[type=email]");
    var error = form.querySelector(".field-error");
    function show(text) {
      error.textContent = text;
      error.hidden = !text;
      if (text) {
        email.setAttribute("aria-invalid", "true");
        email.focus();
      } else {
        email.removeAttribute("aria-invalid");
      }
    }
    if (!email.value.trim()) {
      show(t("email-empty"));
      return;
    }
    show("");
    P.api("POST", base + "/session/email", { email: email.value.trim(), bearer: true }).then(function (answer) {
      ui.settle(form);
      return ui.adopt(answer).then(handOver);
    }, function (refused) {
      show(ui.say(refused));
    });
  }

  function choose(button) {
    var choice = button.getAttribute("data-choice");
    ui.settle(button.closest(".entry"));
    if (choice === "solved") {
      ui.entry("assistant", t("assistant"), t("solved"));
      state.asked = null;
      field.focus();
    } else if (choice === "person") {
      person();
    } else if (choice === "anonymous") {
      P.api("POST", base + "/session/anonymous", { bearer: true }).then(ui.adopt).then(handOver, problem);
    }
  }

  log.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-choice]");
    if (button && !button.disabled) {
      choose(button);
    }
  });

  log.addEventListener("submit", function (event) {
    if (event.target.classList.contains("contact")) {
      event.preventDefault();
      contact(event.target);
    }
  });

  P.assistant = { ask: ask };
})();
