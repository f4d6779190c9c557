// Portico chat widget, inside its frame: where the session token is kept, calls to the JSON API with
// it, and the live-update stream read with fetch (EventSource cannot send an Authorization header).
// Used by frame.js through window.PorticoFrame. Nothing here ever talks to the embedding page.
(function () {
  "use strict";
  var body = document.body;
  var portal = body.dataset.portal;
  var KEY = "portico-chat:" + portal;
  var memory = {};

  // The frame's own storage: localStorage of Portico's origin (browsers partition it per embedding
  // site), or memory only where the browser refuses storage to a third-party frame.
  var store = {
    read: function () {
      try {
        var raw = window.localStorage.getItem(KEY);
        return raw ? JSON.parse(raw) : {};
      } catch (e) {
        return memory;
      }
    },
    write: function (value) {
      memory = value;
      try {
        window.localStorage.setItem(KEY, JSON.stringify(value));
      } catch (e) { /* memory only */ }
    }
  };

  var session = { token: store.read().token || null };

  function failure(response, data) {
    var error = new Error((data && data.message) || ("HTTP " + response.status));
    error.code = (data && data.error) || "http_" + response.status;
    error.status = response.status;
    return error;
  }

  // The request's credentials: the frame's bearer session when it has one (no cookie then), else the
  // portal's cookie, which only a first-party frame (the portal's own pages) has.
  function options(method, headers, payload, signal) {
    headers["Accept-Language"] = body.dataset.lang || "en";
    if (session.token) {
      headers.Authorization = "Bearer " + session.token;
    }
    var init = { method: method, headers: headers, cache: "no-store", signal: signal,
                 credentials: session.token ? "omit" : "same-origin" };
    if (payload !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    return init;
  }

  function api(method, path, payload, extraHeaders) {
    var headers = { "Accept": "application/json" };
    Object.keys(extraHeaders || {}).forEach(function (name) { headers[name] = extraHeaders[name]; });
    return fetch(path, options(method, headers, payload)).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          throw failure(response, data);
        }
        return data;
      });
    });
  }

  // The portal's live-update stream, parsed as EventSource parses it (WHATWG HTML, "Parsing an event
  // stream"), resumed with Last-Event-ID after a drop. `onEvent(type, data)`; `onEnded()` when the
  // session is refused (401/403): it is not retried then.
  function Stream(onEvent, onEnded) {
    this.onEvent = onEvent;
    this.onEnded = onEnded;
    this.lastId = "";
    this.controller = null;
    this.failures = 0;
    this.timer = null;
  }

  Stream.prototype.start = function () {
    this.stop();
    var self = this;
    var controller = new AbortController();
    this.controller = controller;
    var headers = { "Accept": "text/event-stream" };
    if (this.lastId) {
      headers["Last-Event-ID"] = this.lastId;
    }
    fetch("/api/v1/portals/" + encodeURIComponent(portal) + "/events", options("GET", headers, undefined,
                                                                               controller.signal))
      .then(function (response) {
        if (response.status === 401 || response.status === 403) {
          self.controller = null;
          self.onEnded();
          return null;
        }
        if (!response.ok || !response.body) {
          throw new Error("stream refused");
        }
        return self.read(response.body.getReader(), controller);
      })
      .catch(function () { /* dropped: tried again below */ })
      .then(function () {
        if (self.controller === controller && !controller.signal.aborted) {
          self.failures += 1;
          var wait = Math.min(60, Math.pow(2, Math.min(self.failures, 6))) * 500;
          self.timer = window.setTimeout(function () { self.start(); }, wait);
        }
      });
  };

  Stream.prototype.read = function (reader, controller) {
    var self = this;
    var decoder = new TextDecoder();
    var buffer = "";
    var event = { type: "", data: [], id: null };

    function line(text) {
      if (text === "") {
        if (event.id !== null) {
          self.lastId = event.id;
        }
        if (event.data.length) {
          self.onEvent(event.type || "message", event.data.join("\n"));
        }
        event = { type: "", data: [], id: null };
        return;
      }
      if (text.charAt(0) === ":") {
        return;
      }
      var colon = text.indexOf(":");
      var field = colon < 0 ? text : text.slice(0, colon);
      var value = colon < 0 ? "" : text.slice(colon + 1).replace(/^ /, "");
      if (field === "event") {
        event.type = value;
      } else if (field === "data") {
        event.data.push(value);
      } else if (field === "id" && value.indexOf("\u0000") < 0) {
        event.id = value;
      }
    }

    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done || controller.signal.aborted) {
          return;
        }
        self.failures = 0;
        buffer += decoder.decode(chunk.value, { stream: true });
        for (;;) {
          var match = /\r\n|\r|\n/.exec(buffer);
          // A lone "\r" at the end may be the first half of "\r\n": wait for the next chunk.
          if (!match || (match[0] === "\r" && match.index === buffer.length - 1)) {
            break;
          }
          var text = buffer.slice(0, match.index);
          buffer = buffer.slice(match.index + match[0].length);
          line(text);
        }
        return pump();
      });
    }
    return pump();
  };

  Stream.prototype.stop = function () {
    if (this.timer) {
      window.clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.controller) {
      var controller = this.controller;
      this.controller = null;
      controller.abort();
    }
  };

  function randomKey() {
    if (window.crypto && window.crypto.randomUUID) {
      return window.crypto.randomUUID();
    }
    return String(Date.now()) + "-" + Math.random().toString(36).slice(2);
  }

  window.PorticoFrame = { store: store, session: session, api: api, Stream: Stream, randomKey: randomKey,
                          portal: portal };
})();
