/*! Portico chat widget SDK 1.0.0 — https://support.example.com/widget/portico-chat.d.ts has its types.
 *
 *   <script src="https://support.example.com/widget/portico-chat.js" defer></script>
 *   PorticoChat.init({ portal: "demo", onReady: function () {} });
 *   await PorticoChat.sso.login(token);   // a JWT the company's backend signed with the portal's secret
 *   await PorticoChat.sso.logout();
 *
 * Or without any code: <script src=".../portico-chat.js" data-portal="demo" defer></script>.
 *
 * The SDK adds a chat button and an <iframe> served by Portico; the panel lives in the frame, on
 * Portico's origin, and keeps its session there: this page never sees it. The SDK talks to the frame
 * only with postMessage, to Portico's origin (that of this script), and accepts messages only from
 * that origin and that frame. Styles are set through the DOM (no <style> element, no inline HTML), so a
 * page with a strict Content-Security-Policy needs only `script-src` and `frame-src` for Portico.
 */
(function (window, document) {
  "use strict";
  if (window.PorticoChat && window.PorticoChat.version) {
    return; // loaded twice: the first one stays
  }
  var VERSION = "1.0.0";
  var PROTOCOL = "chat/1";
  var READY_WITHIN_MS = 15000;
  var script = document.currentScript || (function () {
    var found = document.querySelectorAll("script[src*='/widget/portico-chat.js']");
    return found[found.length - 1];
  })();
  var ORIGIN = new URL(script.src, window.location.href).origin;

  var state = { portal: null, locale: null, frame: null, button: null, ready: false, broken: null,
                open: false, wantOpen: false, loggedIn: false, nextId: 1, pending: {},
                listeners: { message: [], login: [], logout: [] } };
  var settle = {};
  var ready = new Promise(function (resolve, reject) { settle.resolve = resolve; settle.reject = reject; });
  ready.catch(function () { /* reported to each caller */ });

  function fail(code, message) {
    var error = new Error(message);
    error.name = "PorticoChatError";
    error.code = code;
    return error;
  }

  function emit(name, detail) {
    state.listeners[name].slice().forEach(function (listener) {
      try {
        listener(detail);
      } catch (error) {
        window.setTimeout(function () { throw error; }, 0); // the page's bug is its own, not ours
      }
    });
  }

  function post(message) {
    message.portico = PROTOCOL;
    state.frame.contentWindow.postMessage(message, ORIGIN);
  }

  function request(type, extra) {
    return ready.then(function () {
      return new Promise(function (resolve, reject) {
        var id = state.nextId++;
        state.pending[id] = { resolve: resolve, reject: reject };
        extra.type = type;
        extra.id = id;
        post(extra);
      });
    });
  }

  function phone() {
    return window.matchMedia && window.matchMedia("(max-width: 480px)").matches;
  }

  function set(element, styles) {
    Object.keys(styles).forEach(function (name) { element.style.setProperty(name, styles[name]); });
  }

  function layout() {
    var frame = state.frame;
    var button = state.button;
    if (!frame) {
      return;
    }
    var small = phone();
    set(frame, small
      ? { top: "0", left: "0", right: "0", bottom: "0", width: "100%", height: "100%", "border-radius": "0" }
      : { top: "auto", left: "auto", right: "20px", bottom: "88px", width: "380px",
          height: "min(600px, calc(100vh - 108px))", "border-radius": "12px" });
    set(frame, { display: state.open ? "block" : "none" });
    set(button, { display: state.ready && !(small && state.open) ? "inline-flex" : "none" });
    button.setAttribute("aria-expanded", state.open ? "true" : "false");
  }

  function open() {
    if (!state.ready) {
      state.wantOpen = true;
      return;
    }
    state.open = true;
    layout();
    state.frame.focus();
    post({ type: "open" });
  }

  function close() {
    state.wantOpen = false;
    if (!state.open) {
      return;
    }
    var focused = document.activeElement === state.frame;
    state.open = false;
    layout();
    if (focused) {
      state.button.focus();
    }
  }

  function onReady(data) {
    state.ready = true;
    state.loggedIn = !!data.loggedIn;
    state.button.textContent = data.button || "Chat";
    state.button.setAttribute("aria-label", data.label || "Chat");
    state.frame.title = data.label || "Chat";
    var colours = data.colours || {};
    set(state.button, { background: colours.primary || "#2a5bd7", color: colours.onPrimary || "#ffffff" });
    layout();
    settle.resolve();
    if (state.wantOpen) {
      open();
    }
  }

  function onMessage(event) {
    if (event.origin !== ORIGIN || !state.frame || event.source !== state.frame.contentWindow) {
      return; // only our frame, on Portico's origin
    }
    var data = event.data;
    if (!data || data.portico !== PROTOCOL || typeof data.type !== "string") {
      return;
    }
    if (data.type === "ready") {
      onReady(data);
    } else if (data.type === "reply" && state.pending[data.id]) {
      var waiting = state.pending[data.id];
      delete state.pending[data.id];
      if (data.ok) {
        waiting.resolve();
      } else {
        waiting.reject(fail(String((data.error && data.error.code) || "failed"),
                            String((data.error && data.error.message) || "The chat could not do that.")));
      }
    } else if (data.type === "login") {
      state.loggedIn = true;
      emit("login", {});
    } else if (data.type === "logout") {
      state.loggedIn = false;
      emit("logout", {});
    } else if (data.type === "message") {
      emit("message", { conversationId: String(data.conversationId || "") });
      if (!state.open) {
        state.button.setAttribute("data-unread", "true");
      }
    } else if (data.type === "close") {
      close();
    }
  }

  function mount() {
    var frame = document.createElement("iframe");
    var address = new URL("/widget/frame", ORIGIN);
    address.searchParams.set("portal", state.portal);
    address.searchParams.set("host", window.location.origin);
    if (state.locale) {
      address.searchParams.set("locale", state.locale);
    }
    frame.src = address.href;
    frame.id = "portico-chat-frame";
    frame.title = "Chat";
    set(frame, { position: "fixed", border: "0", "z-index": "2147483000", background: "#ffffff",
                 "box-shadow": "0 8px 32px rgba(0, 0, 0, 0.25)", "color-scheme": "normal" });
    var button = document.createElement("button");
    button.type = "button";
    button.id = "portico-chat-button";
    button.setAttribute("aria-controls", frame.id);
    set(button, { position: "fixed", right: "20px", bottom: "20px", "z-index": "2147483000",
                  "align-items": "center", "min-height": "48px", padding: "0 20px", border: "0",
                  "border-radius": "24px", font: "600 16px/1 system-ui, sans-serif", cursor: "pointer",
                  "box-shadow": "0 4px 16px rgba(0, 0, 0, 0.25)" });
    button.addEventListener("click", function () {
      button.removeAttribute("data-unread");
      if (state.open) {
        close();
      } else {
        open();
      }
    });
    state.frame = frame;
    state.button = button;
    layout();
    // A frame that loads but never says it is ready was refused (this site is not in the portal's
    // widget origins, or no such portal): say so to whoever waits, instead of waiting for ever.
    frame.addEventListener("load", function () {
      window.setTimeout(function () {
        if (!state.ready) {
          state.broken = fail("widget_refused", "The chat did not start on this page: is " +
                              window.location.origin + " in the portal's widget origins?");
          settle.reject(state.broken);
        }
      }, READY_WITHIN_MS);
    });
    document.body.appendChild(frame);
    document.body.appendChild(button);
    if (window.matchMedia) {
      var query = window.matchMedia("(max-width: 480px)");
      (query.addEventListener ? query.addEventListener.bind(query, "change") : query.addListener.bind(query))(layout);
    }
  }

  function init(options) {
    if (!options || typeof options.portal !== "string" || !options.portal) {
      throw new TypeError("PorticoChat.init: `portal` (the portal's slug) is required.");
    }
    if (typeof options.onReady === "function") {
      var callback = options.onReady;
      ready.then(function () { callback(); });
    }
    if (state.portal) {
      return ready; // initialised already: only the callback is added
    }
    state.portal = options.portal;
    state.locale = typeof options.locale === "string" ? options.locale : null;
    window.addEventListener("message", onMessage);
    if (document.body) {
      mount();
    } else {
      document.addEventListener("DOMContentLoaded", mount);
    }
    return ready;
  }

  window.PorticoChat = {
    version: VERSION,
    init: init,
    open: open,
    close: close,
    isLoggedIn: function () { return state.loggedIn; },
    on: function (name, listener) {
      if (!state.listeners[name] || typeof listener !== "function") {
        throw new TypeError("PorticoChat.on: the event is \"message\", \"login\" or \"logout\", with a function.");
      }
      state.listeners[name].push(listener);
      return function off() {
        state.listeners[name] = state.listeners[name].filter(function (l) { return l !== listener; });
      };
    },
    sso: {
      login: function (token) {
        if (typeof token !== "string" || !token) {
          return Promise.reject(fail("invalid_token", "sso.login needs the token (a string)."));
        }
        return request("login", { token: token });
      },
      logout: function () { return request("logout", {}); }
    }
  };

  if (script && script.dataset && script.dataset.portal) {
    init({ portal: script.dataset.portal, locale: script.dataset.locale });
  }
})(window, document);
