// Portico chat widget, inside its frame: the chat with the support team (messages, the agent's answers
// live) and the messages exchanged with the embedding page. The assistant is frame_assistant.js.
//
// Messages: the frame accepts one only from its parent window at the origin the page names in the
// frame's URL (`data-host`, checked by the server against the portal's widget_origins) and answers only
// to that origin. Both ways a message is `{portico: "chat/1", type, ...}`:
//   page -> frame: open | close | login {id, token} | logout {id}
//   frame -> page: ready {loggedIn, label, button, colours} | reply {id, ok, error: {code, message}}
//                  login | logout | message {conversationId} | close
(function () {
  "use strict";
  var PROTOCOL = "chat/1";
  var P = window.PorticoFrame;
  var ui = P.panel;
  var state = P.state;
  var t = ui.t;
  var body = document.body;
  var base = "/api/v1/portals/" + encodeURIComponent(P.portal);
  var host = body.dataset.host;
  var log = document.getElementById("log");
  var composer = document.getElementById("composer");
  var field = document.getElementById("message");
  var stream = new P.Stream(onNotice, ended);
  var linking = null; // the notice shown while a sign-in's conversation is on its way to the new session

  // Only the parent at `host` is talked to (and, where the browser says who the parent is, only if so).
  var parentOk = window.parent !== window && !!host &&
    !(window.location.ancestorOrigins && window.location.ancestorOrigins.length &&
      window.location.ancestorOrigins[0] !== host);

  function tell(type, extra) {
    if (!parentOk) {
      return;
    }
    var message = { portico: PROTOCOL, type: type };
    Object.keys(extra || {}).forEach(function (key) { message[key] = extra[key]; });
    window.parent.postMessage(message, host);
  }

  // -- the chat -------------------------------------------------------------------------------------

  function show(message, announce) {
    if (state.shown[message.id]) {
      return;
    }
    state.shown[message.id] = true;
    if (message.kind === "event") {
      if (message.event === "closed" || message.event === "reopened") {
        ui.entry("notice", null, t(message.event));
      }
      return;
    }
    if (message.kind !== "message") {
      return;
    }
    var mine = message.author_kind === "customer";
    var author = mine ? t("you") : (message.author_name || t("agent"));
    ui.entry(mine ? "visitor" : "agent", author, message.redacted ? "—" : message.body);
    if (!mine && announce) {
      tell("message", { conversationId: state.conversationId });
    }
  }

  // Read the conversation again. Right after a sign-in (`waiting`), a "not found" means it is still on
  // its way to the new session: the panel says so and reads again at the stream's next notice about it.
  function refresh(announce, waiting) {
    var id = state.conversationId;
    if (!id || !ui.hasSession()) {
      return Promise.resolve();
    }
    return P.api("GET", base + "/conversations/" + encodeURIComponent(id)).then(function (reply) {
      if (id === state.conversationId) {
        if (linking) {
          linking.remove();
          linking = null;
        }
        reply.conversation.messages.forEach(function (message) { show(message, announce); });
        ui.chatting(true);
      }
    }, function (error) {
      if (error.status !== 404 || id !== state.conversationId) {
        return;
      }
      if (waiting || linking) {
        linking = linking || ui.entry("notice", null, t("linking"));
        return;
      }
      state.conversationId = null;
      ui.save();
      ui.chatting(false);
      ui.entry("notice", null, t("gone"));
    });
  }

  function write(text) {
    var path = base + "/widget/conversations/" + encodeURIComponent(state.conversationId) + "/messages";
    return P.api("POST", path, { body: text }, { "Idempotency-Key": P.randomKey() }).then(function (posted) {
      if (posted.conversation_id !== state.conversationId) { // continued in a new, linked conversation
        state.conversationId = posted.conversation_id;
        ui.save();
        stream.start();
      }
      show(posted.message, false);
    });
  }

  function onNotice(type, data) {
    if (type === "resync") {
      refresh(true);
      return;
    }
    var notice;
    try {
      notice = type === "conversation" ? JSON.parse(data) : null;
    } catch (e) {
      return;
    }
    if (notice && notice.conversation_id === state.conversationId) {
      refresh(true);
    }
  }

  // The stream was refused: the session ended elsewhere (signed out on another tab, expired).
  function ended() {
    var was = ui.loggedIn();
    P.session.token = null;
    state.me = null;
    state.conversationId = null;
    ui.save();
    ui.showWho();
    if (was) {
      tell("logout");
    }
  }

  P.handedOver = function () {
    stream.start(); // a new stream knows this browser's new conversation at once
  };

  composer.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = field.value.trim();
    if (!text) {
      ui.fieldProblem(t("empty"));
      field.focus();
      return;
    }
    ui.fieldProblem("");
    var send = document.getElementById("send");
    send.disabled = true;
    var done = state.conversationId && ui.hasSession() ? write(text) : P.assistant.ask(text);
    Promise.resolve(done).then(function () {
      field.value = "";
    }, function (error) {
      ui.fieldProblem(ui.say(error)); // what the visitor typed stays in the field
    }).then(function () {
      send.disabled = false;
    });
  });

  field.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });

  document.getElementById("close").addEventListener("click", function () { tell("close"); });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      tell("close");
    }
  });

  // -- the embedding page's requests ------------------------------------------------------------------

  function login(token) {
    if (typeof token !== "string" || !token) {
      return Promise.reject({ code: "invalid_token", message: "sso.login needs the token as a string." });
    }
    // The frame's session (anonymous, or an e-mail typed here) goes along as the one replaced: what it
    // wrote becomes the signed-in customer's.
    return P.api("POST", base + "/session/sso", { token: token, bearer: true }).then(ui.adopt).then(function () {
      ui.showWho();
      if (state.conversationId) {
        stream.start();
        return refresh(false, true);
      }
      return null;
    }).then(function () {
      tell("login");
    });
  }

  function logout() {
    var was = ui.loggedIn();
    var done = ui.hasSession() ? P.api("DELETE", "/api/v1/session") : Promise.resolve();
    return done.catch(function (error) {
      if (error.status !== 401) { // already over is as good as ended
        throw error;
      }
    }).then(function () {
      stream.stop();
      P.session.token = null;
      state.me = null;
      state.conversationId = null;
      state.asked = null;
      state.shown = {};
      ui.save();
      Array.prototype.slice.call(log.children, 1).forEach(function (item) { item.remove(); });
      ui.entry("notice", null, t("signed-out"));
      ui.chatting(false);
      ui.showWho();
      if (was) {
        tell("logout");
      }
    });
  }

  function answer(id, promise) {
    promise.then(function () {
      tell("reply", { id: id, ok: true });
    }, function (error) {
      tell("reply", { id: id, ok: false, error: { code: error.code || "failed",
                                                   message: error.message || t("failed") } });
    });
  }

  window.addEventListener("message", function (event) {
    // Only the embedding page, at the origin it was allowed as: anything else is ignored.
    if (!parentOk || event.source !== window.parent || event.origin !== host) {
      return;
    }
    var data = event.data;
    if (!data || data.portico !== PROTOCOL || typeof data.type !== "string") {
      return;
    }
    if (data.type === "open") {
      field.focus();
    } else if (data.type === "login") {
      answer(data.id, login(data.token));
    } else if (data.type === "logout") {
      answer(data.id, logout());
    }
  });

  ui.readSession().then(function () {
    ui.showWho();
    if (state.conversationId && ui.hasSession()) {
      stream.start();
      return refresh(false);
    }
    state.conversationId = null;
    return null;
  }).then(function () {
    var style = window.getComputedStyle(body);
    tell("ready", { loggedIn: ui.loggedIn(), label: t("label"), button: t("button"),
                    colours: { primary: style.getPropertyValue("--primary").trim(),
                               onPrimary: style.getPropertyValue("--on_primary").trim() } });
  });
})();
