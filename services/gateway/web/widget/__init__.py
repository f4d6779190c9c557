"""The chat widget: a company puts Portico's chat on its own site with one script tag.

```
company page (https://shop.example.com)            Portico (https://support.example.com)
  <script src=".../widget/portico-chat.js">   ──►  GET /widget/portico-chat.js      (routes_sdk.py)
  PorticoChat.init({portal})  injects a button
  and <iframe src=".../widget/frame?…">       ──►  GET /widget/frame                (routes_frame.py)
        ▲  postMessage, both ways, origins           the panel: assistant, hand-over, chat (static/frame*.js)
        ▼  checked on both sides                      fetch(/api/v1/..., Authorization: Bearer ps_…)
```

| file | answers |
| --- | --- |
| `routes_sdk.py` | the SDK `portico-chat.js` and its types `portico-chat.d.ts`: versions and caching |
| `routes_frame.py` | the panel's page, who may embed it (`frame-ancestors`) and whom it talks to |
| `routes_api.py` | hand-over to a person (`chat` channel) and the visitor's messages in the chat |
| `origins.py` | the origins a portal's widget accepts (`widget_origins` plus the portal's own) |
| `history.py` | a sign-in that keeps what the browser wrote before: it answers once that is linked |
| `static/portico-chat.js`, `.d.ts` | the SDK (`window.PorticoChat`: button, iframe, postMessage) and its types |
| `static/frame_api.js` | in the frame: where the session token is kept, the JSON API with it, the live stream by fetch |
| `static/frame_panel.js`, `frame_assistant.js`, `frame.js` | in the frame: the panel's pieces, the assistant and hand-over, the chat and the page's requests |
| `../templates/widget/frame.html` | the panel's markup and words (gettext) |

Design, in short (the README's "Chat widget" section has the integration example):

- **Origins.** The admin lists the sites that may embed the widget (`widget_origins`, a portal setting);
  the portal's own origin is always allowed. The frame page answers with
  `Content-Security-Policy: frame-ancestors 'self' <the portal's origin> <widget_origins>`, so no other
  site can show it. The SDK names its page's origin in the frame's URL (`host`); the frame refuses a
  host not on that list and then talks only to it: it accepts a message only when `event.origin` is
  that host and `event.source` is its parent, and posts with that origin as `targetOrigin` (never
  `*`). The SDK accepts messages only from Portico's origin (that of its own script) and from its frame.
- **Session without third-party cookies.** The frame signs in with `"bearer": true` (SSO, e-mail access,
  anonymous) and keeps the session token it gets in its own storage (`localStorage` of Portico's origin,
  partitioned by the browser per site; kept in memory where the browser refuses storage to a
  third-party frame). It sends it as `Authorization: Bearer ps_…`; the host page never sees it. The
  session is the portal's (as any portal session) and `DELETE /api/v1/session` with it ends it on every
  gateway. On the portal's own pages, where Portico's cookie is first-party, the frame uses the
  portal's cookie session when the visitor is signed in there.
- **Live answers.** `EventSource` cannot send a bearer token, so the frame reads the same stream
  (`GET /api/v1/portals/{portal}/events`) with `fetch` and parses the server-sent events itself,
  resuming with `Last-Event-ID` as EventSource would. A notice about its conversation makes it read
  the conversation again through the normal authorised route.
- **Virtual assistant, then a person.** The visitor's question is searched in the knowledge base
  (`/kb/articles?q=`, typo-tolerant; public articles unless staff); up to three are offered and the
  visitor is asked whether that solved it. If not, `routes_api.hand_over` opens a conversation on the
  `chat` channel whose first message holds the question and the articles offered. Without a session
  the visitor is asked for an e-mail address (e-mail access: an unverified session, the account is
  created) or, where the portal allows it, continues anonymously.
- **Sign-in keeps history.** `sso.login(token)` posts the company's token with the frame's earlier
  session as the one replaced: auth links the identities (`IdentityLinked`), and `history.py` makes
  the sign-in answer only once the earlier conversations are the customer's.
"""

from fastapi import FastAPI


def install_widget(app: FastAPI) -> None:
    """The widget's SDK, frame page, static files and JSON routes on the gateway's app."""
    from fastapi.staticfiles import StaticFiles

    from services.gateway.web.widget import routes_api, routes_frame, routes_sdk

    app.mount(routes_sdk.STATIC_PATH, StaticFiles(directory=routes_sdk.STATIC), name="widget-static")
    for module in (routes_sdk, routes_frame, routes_api):
        app.include_router(module.router)
