// Portico portal and agent workspace: live updates. The gateway's event stream (the URL in <body data-live>:
// the portal's, or the staff's /api/v1/agent/events) says only which
// conversation changed; this page then reads itself again through the normal, signed-in GET and swaps in
// the parts marked `data-live-region` (by id). Forms are never inside those, so what the customer is
// typing stays. Without JavaScript or EventSource the page shows what it showed when it was loaded.
(function () {
  "use strict";
  var url = document.body && document.body.dataset.live;
  if (!url || !window.EventSource || !window.fetch || !("content" in document.createElement("template")) || !window.CSS || !window.URL) {
    return;
  }
  var source = null;
  var lastId = "";
  var failures = 0;
  var busy = false;
  var again = false;

  // Whether a change of conversation `id` (null: of any) shows on this page.
  function concerns(id) {
    if (document.querySelector("[data-live-list]")) {
      return true;
    }
    var here = document.querySelector("[data-conversation]");
    return !!here && (id === null || here.getAttribute("data-conversation") === id);
  }

  // Whether the page already shows `version` of conversation `id` (where the page says which it shows,
  // with `data-version`): then the notice is about what the page was rendered from.
  function shows(id, version) {
    var selector = "[data-version][data-conversation=\"" + CSS.escape(id) + "\"], " +
      "[data-version][data-conversation-id=\"" + CSS.escape(id) + "\"]";
    var element = document.querySelector(selector);
    return !!element && typeof version === "number" && version <= parseInt(element.getAttribute("data-version"), 10);
  }

  function announce() {
    var status = document.getElementById("live-status");
    if (!status) {
      return;
    }
    status.textContent = "";
    // A moment later: screen readers then announce it even when the words are the same as last time.
    window.setTimeout(function () { status.textContent = status.getAttribute("data-text-new") || ""; }, 100);
  }

  function nearBottom() {
    return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 120;
  }

  // Replace each live region by its namesake in `fresh`; true when anything changed.
  function swap(fresh) {
    var focusedId = document.activeElement && document.activeElement.id;
    var changed = false;
    Array.prototype.forEach.call(document.querySelectorAll("[data-live-region][id]"), function (region) {
      var next = fresh.getElementById(region.id);
      if (next && next.outerHTML !== region.outerHTML) {
        region.replaceWith(document.importNode(next, true));
        changed = true;
      }
    });
    // The conversation page's own version, outside the regions, follows what they now show.
    var here = document.querySelector("[data-conversation][data-version]");
    var there = here && fresh.querySelector("[data-conversation][data-version]");
    if (changed && there) {
      here.setAttribute("data-version", there.getAttribute("data-version"));
    }
    // Focus was inside a region that was replaced: put it back on the same element, if it is still there.
    if (changed && focusedId && document.activeElement === document.body) {
      var target = document.getElementById(focusedId);
      if (target) {
        target.focus({ preventScroll: true });
      }
    }
    return changed;
  }

  // The page read again, as an inert fragment. Not DOMParser: its document takes this page's
  // Content-Security-Policy, and the new page's theme <style> (with a nonce of its own) is then reported
  // as a violation of it.
  function parse(html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    return template.content;
  }

  function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    var x = window.scrollX;
    var y = window.scrollY;
    var atBottom = nearBottom();
    fetch(location.href, { credentials: "same-origin", cache: "no-store", headers: { "Accept": "text/html" } })
      .then(function (response) {
        // Signed out or gone (a redirect to sign in, an error page): leave the page as it is.
        return response.ok && !response.redirected ? response.text() : null;
      })
      .then(function (html) {
        if (html !== null && swap(parse(html))) {
          // Someone reading further up stays where they are; someone at the end sees the new end.
          window.scrollTo(x, atBottom ? document.documentElement.scrollHeight : y);
          announce();
          // For the page's own scripts (the agent workspace's agent.js): the live regions were swapped.
          document.dispatchEvent(new CustomEvent("portico:live-updated"));
        }
      })
      .catch(function () { /* offline for a moment: the next notice reads again */ })
      .then(function () {
        busy = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  }

  function connect() {
    // The page's URL starts where the page was rendered (`last_event_id`), so nothing that happens
    // before the stream opens is missed. A new EventSource after a refusal starts where the last stopped.
    var address = new URL(url, location.href);
    if (lastId) {
      address.searchParams.set("last_event_id", lastId);
    }
    source = new EventSource(address.href);
    source.addEventListener("open", function () { failures = 0; });
    source.addEventListener("ready", function (event) { lastId = event.lastEventId || lastId; });
    source.addEventListener("conversation", function (event) {
      lastId = event.lastEventId || lastId;
      var notice;
      try {
        notice = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      var id = notice && String(notice.conversation_id);
      if (id && concerns(id) && !shows(id, notice.version)) {
        refresh();
      }
    });
    source.addEventListener("resync", function () {
      if (concerns(null)) {
        refresh();
      }
    });
    source.addEventListener("error", function () {
      // The browser reconnects by itself (sending Last-Event-ID). It gives up only when refused
      // (signed out, the service unavailable): then try again later, less and less often.
      if (source.readyState === EventSource.CLOSED && failures < 6) {
        failures += 1;
        window.setTimeout(connect, Math.min(300, 5 * Math.pow(2, failures)) * 1000);
      }
    });
  }

  // A page kept in the back-forward cache must not hold a connection; coming back, it reads afresh.
  window.addEventListener("pagehide", function () {
    if (source) {
      source.close();
    }
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      connect();
      if (concerns(null)) {
        refresh();
      }
    }
  });
  connect();
})();
