// Portico chat widget, inside its frame: the panel's words and pieces, and the visitor's session as the
// panel knows it. Shared by frame_assistant.js and frame.js through window.PorticoFrame.
(function () {
  "use strict";
  var P = window.PorticoFrame;
  var body = document.body;
  var log = document.getElementById("log");
  var field = document.getElementById("message");
  var fieldError = document.getElementById("message-error");
  var words = JSON.parse(body.dataset.words || "{}");
  var saved = P.store.read();

  // What the panel holds: the session (GET /api/v1/session), its conversation, the message ids already
  // shown, and the question the assistant answered last ({question, articles}).
  var state = P.state = { me: null, conversationId: saved.conversation || null, shown: {}, asked: null };

  // A short text of the page (data-t-<name>), its %(name)s placeholders filled from `values`.
  function t(name, values) {
    var text = body.getAttribute("data-t-" + name) || "";
    return text.replace(/%\((\w+)\)s/g, function (_, key) { return values && key in values ? values[key] : ""; });
  }

  // A refusal in the visitor's words (the portal's words for its code), else the server's own message.
  function say(error) {
    return (error && words[error.code]) || (error && error.status < 500 && error.message) || t("failed");
  }

  function scrolled(item) {
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  // A new entry at the end of the log: `kind` (assistant, visitor, agent, notice), an author, a text.
  function entry(kind, author, text) {
    var item = document.createElement("div");
    item.className = "entry " + kind;
    if (author) {
      var label = document.createElement("p");
      label.className = "author";
      label.textContent = author;
      item.appendChild(label);
    }
    if (text !== undefined && text !== null) {
      var paragraph = document.createElement("p");
      paragraph.className = "text";
      paragraph.textContent = text;
      item.appendChild(paragraph);
    }
    return scrolled(item);
  }

  // A copy of <template id=...> at the end of the log.
  function fromTemplate(id) {
    return scrolled(document.getElementById(id).content.firstElementChild.cloneNode(true));
  }

  // The buttons and fields of an entry that was answered: they cannot be used twice.
  function settle(item) {
    Array.prototype.forEach.call(item.querySelectorAll("button, input"), function (control) {
      control.disabled = true;
    });
  }

  function fieldProblem(text) {
    fieldError.textContent = text || "";
    fieldError.hidden = !text;
    if (text) {
      field.setAttribute("aria-invalid", "true");
    } else {
      field.removeAttribute("aria-invalid");
    }
  }

  // The composer asks the assistant (a question) or writes in the chat (a message).
  function chatting(on) {
    document.getElementById("message-label").textContent = on ? t("message") : t("question");
  }

  function save() {
    P.store.write({ token: P.session.token, conversation: state.conversationId });
  }

  // A customer who signed in (not an address typed in the panel, not anonymous).
  function loggedIn() {
    return !!state.me && state.me.kind === "customer" && state.me.method !== "email_unverified";
  }

  // Any session of this portal that may write: customer (verified or not) or anonymous.
  function hasSession() {
    var me = state.me;
    return !!me && (me.kind === "customer" || me.kind === "anonymous") && me.portal === P.portal;
  }

  function showWho() {
    var me = state.me;
    var name = me && (me.display_name || me.email);
    var who = document.getElementById("who");
    if (loggedIn()) {
      who.textContent = t("signed-in-as", { name: name });
    } else if (hasSession() && me.kind === "customer") {
      who.textContent = t("writing-as", { name: name });
    } else {
      who.textContent = t("guest");
    }
  }

  // Who the panel is: its bearer session, else (on the portal's own pages) the portal's cookie session.
  function readSession() {
    return P.api("GET", "/api/v1/session").then(function (session) {
      state.me = session;
    }, function (error) {
      if (error.status === 401 && P.session.token) {
        P.session.token = null; // ended elsewhere (signed out, expired)
        save();
        return readSession();
      }
      state.me = null;
      return null;
    });
  }

  // A sign-in's answer ({..., session_token}): the panel's session from now on.
  function adopt(answer) {
    P.session.token = answer.session_token;
    save();
    return readSession();
  }

  P.panel = { t: t, say: say, entry: entry, fromTemplate: fromTemplate, settle: settle, fieldProblem: fieldProblem,
              chatting: chatting, save: save, loggedIn: loggedIn, hasSession: hasSession, showWho: showWho,
              readSession: readSession, adopt: adopt };
})();
