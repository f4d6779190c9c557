"""What the knowledge base serves is safe: article Markdown and theme header/footer Markdown against an XSS
corpus, custom CSS limited to a scoped safe subset; and the theme flow (draft, preview, publish, upgrade)
behind the public, cacheable `GET /api/v1/portals/{portal}/config`."""

import re
import urllib.parse

import httpx
import pytest
from bs4 import BeautifulSoup

from tests.kit.conversations import Demo, make_demo

ADMIN_ARTICLES = "/api/v1/admin/portals/demo/kb/articles"
READ = "/api/v1/portals/demo/kb/articles"
THEME = "/api/v1/admin/portals/demo/theme"
CONFIG = "/api/v1/portals/demo/config"
VIEWS = ("home", "article", "my_conversations", "conversation_detail")


@pytest.fixture
async def demo(settings, stack, gateway):  # type: ignore[no-untyped-def]
    demo = await make_demo(settings, gateway)
    yield demo
    await demo.admin.aclose()


# -- the XSS corpus ------------------------------------------------------------------------------

XSS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "Hello <scr<script>ipt>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    '<img src="x" ONERROR=alert(1) />',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](&#x6A;&#x61;&#x76;&#x61;script:alert(1))",
    "[click](java&#x09;script:alert(1))",
    "[click](java\tscript:alert(1))",
    "[click](<javascript:alert(1)>)",
    "[click]( javascript:alert(1))",
    "[click](%6Aavascript:alert(1))",
    "[click](vbscript:msgbox(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![pixel](data:image/png;base64,iVBORw0KGgo=)",
    "![x](javascript:alert(1))",
    '![x](https://example.com/i.png "title\\" onerror=\\"alert(1))',
    "[ref][evil]\n\n[evil]: javascript:alert(1)",
    "[ref][evil]\n\n[evil]: data:text/html,<script>alert(1)</script> \"t\"",
    "<javascript:alert(1)>",
    "<vbscript:msgbox(1)>",
    "<data:text/html,<script>alert(1)</script>>",
    '<svg onload="alert(1)"><circle r="1"/></svg>',
    '<iframe src="https://evil.example"></iframe>',
    "<style>body { display: none }</style>",
    '<div onclick="alert(1)" onmouseover=alert(1)>hover</div>',
    '<a href="vbscript:msgbox(1)">vb</a>',
    '<a href="javascript:alert(1)" onfocus=alert(1) autofocus>x</a>',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    '<form action="javascript:alert(1)"><input type=submit></form>',
    '<base href="javascript:/">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<link rel=stylesheet href="https://evil.example/x.css">',
    "<!-- --><script>alert(1)</script><!-- -->",
    "<!--<img src=x onerror=alert(1)>-->",
    "<div><p><b><i>unclosed <script>alert(1)",
    '<<script>script>alert(1)<</script>/script>',
    '[x](https://example.com/ "a\\" onmouseover=\\"alert(1)")',
    '[x](https://example.com/"onmouseover="alert(1))',
    '<a href="https://example.com" title=\'x" onclick="alert(1)\'>x</a>',
    "`<script>alert(1)</script>` and\n\n    <script>alert(1)</script>",
    "```html\n<script>alert(1)</script>\n```",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\"></noscript>",
    "<details open ontoggle=alert(1)>",
    "<body onload=alert(1)>",
    "<https://example.com/\" onmouseover=\"alert(1)>",
    "[a](https://example.com/?q=\"><script>alert(1)</script>)",
    "*emphasis <img src=x onerror=alert(1)>*",
    "| a | b |\n|---|---|\n| <script>alert(1)</script> | [x](javascript:alert(1)) |",
]
assert len(XSS) >= 25

FORBIDDEN_TAGS = {"script", "iframe", "object", "embed", "style", "form", "base", "meta", "svg", "math", "link",
                  "input", "button", "textarea", "frame", "frameset", "applet", "body", "html", "noscript",
                  "details", "div", "span", "template"}
SAFE_SCHEMES = {"", "http", "https", "mailto"}


def unsafe(markup: str) -> list[str]:
    """Every way `markup` could run script, parsed rather than grepped; [] when safe."""
    problems = []
    if re.search(r"<\s*/?\s*(script|iframe|object|embed|style|form|base|meta|svg)\b", markup, re.IGNORECASE):
        problems.append("a dangerous tag in the raw markup")
    soup = BeautifulSoup(markup, "html.parser")
    for tag in soup.find_all(True):
        if tag.name in FORBIDDEN_TAGS:
            problems.append(f"<{tag.name}>")
        for name, value in tag.attrs.items():
            value = " ".join(value) if isinstance(value, list) else value
            if name.lower().startswith("on"):
                problems.append(f"<{tag.name} {name}=...>")
            if name.lower() in {"style", "srcdoc", "formaction", "action", "xlink:href", "background"}:
                problems.append(f"<{tag.name} {name}=...>")
            # What a browser would take as the scheme: entities decoded (the parser did), control characters
            # and whitespace dropped, case folded.
            squeezed = re.sub(r"[\x00-\x20\x7f]+", "", value).lower()
            if re.match(r"(javascript|vbscript|data|livescript|file):", squeezed):
                problems.append(f"<{tag.name} {name}={value!r}>")
            if name in {"href", "src"}:
                scheme = urllib.parse.urlsplit(squeezed).scheme
                if scheme not in SAFE_SCHEMES or squeezed.startswith("//") or squeezed.startswith("/\\"):
                    problems.append(f"<{tag.name} {name}={value!r}> (scheme {scheme!r})")
    return problems


async def test_article_bodies_are_sanitised_against_an_xss_corpus(demo: Demo):
    reader = demo.browser()
    failures = []
    for i, source in enumerate(XSS):
        created = await demo.admin.post(ADMIN_ARTICLES, json={
            "title": f"Corpus {i}", "slug": f"corpus-{i}", "body": source, "published": True})
        assert created.status_code == 201, (source, created.text)
        served = {"admin reply": created.json()["article"]["body_html"]}
        read = await reader.get(f"{READ}/corpus-{i}")
        assert read.status_code == 200, read.text
        served["reader reply"] = read.json()["article"]["body_html"]
        admin_get = await demo.admin.get(f"{ADMIN_ARTICLES}/corpus-{i}")
        served["admin get"] = admin_get.json()["article"]["body_html"]
        assert admin_get.json()["article"]["body"] == source  # the Markdown source is kept as written
        for where, markup in served.items():
            if problems := unsafe(markup):
                failures.append((source, where, markup, problems))
    # Editing goes through the same renderer.
    for i, source in enumerate(XSS[:10]):
        edited = await demo.admin.patch(f"{ADMIN_ARTICLES}/corpus-{i}", json={"body": "ok\n\n" + source})
        assert edited.status_code == 200, edited.text
        if problems := unsafe(edited.json()["article"]["body_html"]):
            failures.append((source, "edit", edited.json()["article"]["body_html"], problems))
    assert failures == [], "\n".join(map(str, failures))

    # The rest of the page was not eaten: the visible text survives as text.
    script = (await reader.get(f"{READ}/corpus-0")).json()["article"]["body_html"]
    assert "alert(1)" in BeautifulSoup(script, "html.parser").get_text()
    await reader.aclose()


async def test_ordinary_markdown_still_renders(demo: Demo):
    source = ("# Getting started\n\n## Steps\n\n1. Open **Settings**\n2. Choose *Profile*\n\n- one\n- two\n\n"
              "Read [the guide](https://example.com/guide \"The guide\") or mail <mailto:help@example.com>.\n\n"
              "Visit <https://example.com/status>.\n\n"
              "Use `pip install portico` or:\n\n```bash\nmake run\n```\n\n> A quote\n\n~~old~~\n\n"
              "| Plan | Price |\n|:-----|------:|\n| Basic | 5 EUR |\n\n![Logo](https://example.com/logo.png)\n\n---\n")
    created = await demo.admin.post(ADMIN_ARTICLES, json={"title": "Markdown", "body": source, "published": True})
    assert created.status_code == 201, created.text
    served = (await demo.browser().get(f"{READ}/markdown")).json()["article"]["body_html"]
    assert served == created.json()["article"]["body_html"]
    assert unsafe(served) == []
    soup = BeautifulSoup(served, "html.parser")
    assert soup.h1.get_text() == "Getting started" and soup.h2.get_text() == "Steps"
    assert [li.get_text() for li in soup.ol.find_all("li")] == ["Open Settings", "Choose Profile"]
    assert soup.ol.strong.get_text() == "Settings" and soup.ol.em.get_text() == "Profile"
    assert [li.get_text() for li in soup.ul.find_all("li")] == ["one", "two"]
    links = {a["href"]: a for a in soup.find_all("a")}
    assert set(links) == {"https://example.com/guide", "mailto:help@example.com", "https://example.com/status"}
    assert links["https://example.com/guide"]["title"] == "The guide"
    assert "noopener" in links["https://example.com/guide"]["rel"]
    assert soup.find("code").get_text() == "pip install portico"
    assert soup.pre.code.get_text() == "make run\n"
    assert soup.blockquote.get_text().strip() == "A quote"
    assert soup.find(["del", "s"]).get_text() == "old"
    assert [th.get_text() for th in soup.table.find_all("th")] == ["Plan", "Price"]
    assert [td.get_text() for td in soup.table.find_all("td")] == ["Basic", "5 EUR"]
    assert soup.img["src"] == "https://example.com/logo.png" and soup.img["alt"] == "Logo"
    assert soup.hr is not None


# -- themes ---------------------------------------------------------------------------------

def view(**values: object) -> dict:
    return {"base_template": "standard", "colours": {"primary": "#112233"}, "custom_css": "", "header": "",
            "footer": "", **values}


def theme(name: str = "Acme", version: int = 3, **views: dict) -> dict:
    return {"name": name, "version": version, "views": views or {v: view() for v in VIEWS}}


async def save_draft(demo: Demo, body: dict) -> httpx.Response:
    return await demo.admin.put(f"{THEME}/draft", json=body)


async def publish(demo: Demo) -> dict:
    response = await demo.admin.post(f"{THEME}/publish")
    assert response.status_code == 200, response.text
    return response.json()


async def test_theme_header_and_footer_markdown_is_sanitised(demo: Demo):
    reader = demo.browser()
    failures = []
    for start in range(0, len(XSS), 8):
        chunk = XSS[start:start + 8]
        slots = [(v, part) for v in VIEWS for part in ("header", "footer")]
        views = {v: view() for v in VIEWS}
        for (v, part), source in zip(slots, chunk, strict=False):
            views[v][part] = source
        saved = await save_draft(demo, theme(f"Corpus {start}", **views))
        assert saved.status_code == 200, saved.text
        preview = await demo.admin.get(f"{THEME}/preview")
        assert preview.status_code == 200, preview.text
        await publish(demo)
        config = await reader.get(CONFIG)
        assert config.status_code == 200 and config.json()["theme"]["name"] == f"Corpus {start}"
        for (v, part), source in zip(slots, chunk, strict=False):
            for where, state in (("draft reply", saved.json()["draft"]), ("preview", preview.json()),
                                 ("config", config.json()["theme"])):
                markup = state["views"][v][f"{part}_html"]
                if problems := unsafe(markup):
                    failures.append((source, where, v, part, markup, problems))
    assert failures == [], "\n".join(map(str, failures))
    await save_draft(demo, theme(home=view(header="**Welcome** to [Acme](https://acme.example)"),
                                 article=view(footer="(c) Acme · [Privacy](/privacy)")))
    await publish(demo)
    served = (await reader.get(CONFIG)).json()["theme"]["views"]
    assert "<strong>Welcome</strong>" in served["home"]["header_html"]
    assert 'href="https://acme.example"' in served["home"]["header_html"]
    assert 'href="/privacy"' in served["article"]["footer_html"]
    await reader.aclose()


REFUSED_CSS = [
    '@import url("https://evil.example/x.css");',
    "@import 'https://evil.example/x.css';",
    "@font-face { font-family: x; }",
    "@media screen { a { color: red } }",
    "a { color: red } @charset 'utf-8';",
    "a { background-color: url(https://evil.example/x.png) }",
    "a { background-color: URL( 'https://evil.example/x.png' ) }",
    "a { color: u\\72 l(x) }",
    "a { width: expression(alert(1)) }",
    "a { width: EXPRESSION(alert(1)) }",
    "a { behavior: url(x.htc) }",
    "a { -moz-binding: url(x.xml#xss) }",
    "a { color: red } </style><script>alert(1)</script>",
    "a { font-family: '</style><script>alert(1)</script>' }",
    "</style><script>alert(1)</script> a { color: red }",
    "a { font-family: '\\3c /style>' }",
    "a\\:hover { color: red }",
    "a { position: fixed }",
    "a { background: red }",
    "a { content: 'x' }",
    "a { background-image: linear-gradient(red, blue) }",
    "a[href^='javascript'] { color: red }",
    "input[type=password] { color: red }",
    "a:not([href]) { color: red }",
    "a { color: red; @import 'x'; }",
    "a { font-family: javascript:alert(1) }",
    "<script>alert(1)</script>",
    # Numbers past Python's 4,300-digit limit on integer strings, which the CSS parser trips over.
    "a { width: " + "1" * 4301 + "px }",
    "a { width: " + "1" * 4301 + " }",
    "a { opacity: " + "9" * 5000 + "% }",
]


async def test_custom_css_outside_the_safe_subset_is_refused(demo: Demo):
    good = theme(home=view(custom_css="h1 { color: #101010 }"))
    assert (await save_draft(demo, good)).status_code == 200
    failures = []
    for css in REFUSED_CSS:
        for target in ("home", "conversation_detail"):
            response = await save_draft(demo, theme(**{target: view(custom_css=css)}))
            if response.status_code != 422 or response.json().get("error") != "invalid_setting":
                failures.append((css, target, response.status_code, response.text[:200]))
    assert failures == [], "\n".join(map(str, failures))
    # None of the refused drafts replaced the good one.
    draft = (await demo.admin.get(THEME)).json()["draft"]
    assert draft["views"]["home"]["css"] == ".portico-portal h1 { color: #101010 }"


async def test_safe_css_is_served_scoped_under_the_portal(demo: Demo):
    css = ("h1, .portico-title > a:hover { color: #123456; font-weight: 700 }\n"
           "/* a comment */ .card { border-radius: 4px; padding: 8px 12px !important; box-shadow: 0 1px 2px #000 }\n"
           "* { font-family: 'Inter', sans-serif }")
    saved = await save_draft(demo, theme(home=view(custom_css=css)))
    assert saved.status_code == 200, saved.text
    expected = (".portico-portal h1, .portico-portal .portico-title > a:hover { color: #123456; font-weight: 700 }\n"
                ".portico-portal .card { border-radius: 4px; padding: 8px 12px !important; "
                "box-shadow: 0 1px 2px #000 }\n"
                '.portico-portal * { font-family: "Inter", sans-serif }')
    assert saved.json()["draft"]["views"]["home"]["css"] == expected
    await publish(demo)
    served = (await demo.browser().get(CONFIG)).json()["theme"]["views"]["home"]["css"]
    assert served == expected
    for rule in served.splitlines():
        selectors = rule.split("{")[0]
        assert all(part.strip().startswith(".portico-portal ") for part in selectors.split(","))
    assert "</" not in served and "<" not in served


async def test_theme_draft_preview_publish_and_the_public_config(demo: Demo):
    visitor = demo.browser()
    before = await visitor.get(CONFIG)
    assert before.status_code == 200 and "set-cookie" not in before.headers
    assert before.headers["cache-control"].startswith("public")
    assert before.json()["theme"]["name"] == "Portico" and before.json()["theme"]["version"] == 3
    etag = before.headers["etag"]
    assert (await visitor.get(CONFIG, headers={"If-None-Match": etag})).status_code == 304

    acme = theme("Acme", **{v: view(colours={"primary": "#aa0000", "text": "#111111"},
                                    logo_url="https://cdn.acme.example/logo.png",
                                    custom_css=".hero { color: #aa0000 }", header="# Acme help",
                                    footer="Acme Ltd") for v in VIEWS})
    saved = await save_draft(demo, acme)
    assert saved.status_code == 200, saved.text
    assert saved.json()["draft"]["name"] == "Acme"
    preview = await demo.admin.get(f"{THEME}/preview")
    assert preview.status_code == 200 and preview.json() == saved.json()["draft"]
    assert preview.json()["views"]["home"]["header_html"] == "<h1>Acme help</h1>\n"

    # A saved draft changes nothing the portal serves.
    unchanged = await visitor.get(CONFIG, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304

    published = await publish(demo)
    assert published["published"]["name"] == "Acme"
    after = await visitor.get(CONFIG, headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["etag"] != etag
    served = after.json()["theme"]
    assert served == published["published"]
    assert served["views"]["article"]["colours"] == {"primary": "#aa0000", "text": "#111111"}
    assert served["views"]["home"]["logo_url"] == "https://cdn.acme.example/logo.png"
    assert served["views"]["home"]["css"] == ".portico-portal .hero { color: #aa0000 }"
    assert served["upgrade_needed"] == []
    assert (await visitor.get(CONFIG, headers={"If-None-Match": after.headers["etag"]})).status_code == 304

    # The next draft is not served until it is published.
    assert (await save_draft(demo, theme("Acme winter"))).status_code == 200
    assert (await visitor.get(CONFIG)).json()["theme"]["name"] == "Acme"
    assert (await demo.admin.get(f"{THEME}/preview")).json()["name"] == "Acme winter"
    await visitor.aclose()


async def test_an_old_theme_is_flagged_and_upgraded_in_one_step(demo: Demo):
    home = view(colours={"primary": "#0a0b0c", "accent": "#ffcc00"}, logo_url="/static/logo.png",
                custom_css=".banner { background-color: #0a0b0c }", header="**Old** header", footer="Old footer")
    article = view(colours={"primary": "#222222"}, custom_css="p { line-height: 1.6 }", header="Article header",
                   footer="Article footer")
    saved = await save_draft(demo, theme("Legacy", 2, home=home, article=article))
    assert saved.status_code == 200, saved.text
    assert set(saved.json()["draft"]["upgrade_needed"]) == {"my_conversations", "conversation_detail"}
    await publish(demo)
    config = await demo.browser().get(CONFIG)
    legacy = config.json()["theme"]
    assert legacy["version"] == 2
    assert "my_conversations" in legacy["upgrade_needed"] and "conversation_detail" in legacy["upgrade_needed"]
    assert set(legacy["views"]) == {"home", "article"}
    state = (await demo.admin.get(THEME)).json()
    assert state["required_version"] == 3 and state["published"]["upgrade_needed"] == legacy["upgrade_needed"]

    upgraded = await demo.admin.post(f"{THEME}/upgrade")
    assert upgraded.status_code == 200, upgraded.text
    for which in ("published", "draft"):
        current = upgraded.json()[which]
        assert current["version"] == 3 and current["upgrade_needed"] == [] and current["name"] == "Legacy"
        assert set(current["views"]) == set(VIEWS)
        assert current["views"]["home"] == legacy["views"]["home"]
        assert current["views"]["article"] == legacy["views"]["article"]
        for new_view in ("my_conversations", "conversation_detail"):
            assert current["views"][new_view] == legacy["views"]["home"], new_view
    served = await demo.browser().get(CONFIG, headers={"If-None-Match": config.headers["etag"]})
    assert served.status_code == 200 and served.json()["theme"] == upgraded.json()["published"]
    again = await demo.admin.post(f"{THEME}/upgrade")  # current already: nothing changes
    assert again.status_code == 200 and again.json()["published"] == upgraded.json()["published"]


BAD_COLOURS = [{"primary": "red"}, {"primary": "#fff"}, {"primary": "#12345g"}, {"primary": "#1234567"},
               {"primary": "javascript:alert(1)"}, {"primary": "#123456; background: url(x)"},
               {"Primary": "#123456"}, {"1st": "#123456"}, {"a b": "#123456"}, {"": "#123456"},
               {"primary": "rgb(0,0,0)"}, {"primary": " #123456"}]
BAD_LOGOS = ["http://cdn.example.com/logo.png", "javascript:alert(1)", "JAVASCRIPT:alert(1)", "//evil.example/l.png",
             "data:image/png;base64,iVBORw0KGgo=", "ftp://example.com/l.png", " https://example.com/l.png",
             "logo.png", "vbscript:x", "http:/example.com/l.png"]


ESCAPED_CSS = ["a { color: \\72 ed }", "a { col\\6fr: red }", "a { font-family: '\\41 rial' }",
               "a { color: r\\65 d !important }"]


async def test_css_escapes_are_never_served(demo: Demo):
    """Escapes are either refused or decoded: what the portal serves never carries a backslash, so no escape
    can smuggle `url(`, `expression` or `</style>` past the checks."""
    for css in ESCAPED_CSS:
        response = await save_draft(demo, theme(home=view(custom_css=css)))
        if response.status_code == 422:
            assert response.json()["error"] == "invalid_setting"
            continue
        assert response.status_code == 200, response.text
        served = response.json()["draft"]["views"]["home"]["css"]
        assert "\\" not in served and served.startswith(".portico-portal a {"), (css, served)


async def test_the_admin_view_of_an_unpublished_portal_names_the_theme_it_serves(demo: Demo):
    """Until a theme is published the portal serves the default one; the admin API says so before a draft
    exists, and must keep saying so after a draft is saved (it answers `published: null` instead)."""
    served = (await demo.browser().get(CONFIG)).json()["theme"]
    assert (await demo.admin.get(THEME)).json()["published"] == served
    saved = await save_draft(demo, theme("Acme"))
    assert saved.status_code == 200, saved.text
    assert (await demo.browser().get(CONFIG)).json()["theme"] == served
    assert saved.json()["published"] == served, saved.json()["published"]
    assert (await demo.admin.get(THEME)).json()["published"] == served


async def test_bad_colours_and_logos_are_refused(demo: Demo):
    failures = []
    for colours in BAD_COLOURS:
        response = await save_draft(demo, theme(home=view(colours=colours)))
        if response.status_code != 422 or response.json().get("error") != "invalid_setting":
            failures.append(("colours", colours, response.status_code, response.text[:200]))
    for logo in BAD_LOGOS:
        response = await save_draft(demo, theme(article=view(logo_url=logo)))
        if response.status_code != 422 or response.json().get("error") != "invalid_setting":
            failures.append(("logo", logo, response.status_code, response.text[:200]))
    assert failures == [], "\n".join(map(str, failures))
    assert (await demo.admin.get(THEME)).json()["draft"] is None  # nothing stored
    for logo in ("https://cdn.example.com/logo.png", "/static/logo.png", None):
        ok = await save_draft(demo, theme(home=view(logo_url=logo, colours={"primary": "#1A2b3C", "bg_2": "#000000"})))
        assert ok.status_code == 200, (logo, ok.text)


async def test_a_theme_whose_words_fail_wcag_aa_contrast_is_refused_and_nothing_stored(demo: Demo):
    """WCAG 2.1 AA (1.4.3): words need a contrast ratio of 4.5:1 with what is behind them. #767676 on white is
    4.54:1, #777777 is 4.47:1; a colour the theme leaves out is checked as the stylesheet's default."""
    readable = theme("Readable", **{v: view(colours={"text": "#767676", "background": "#ffffff",
                                                      "surface": "#ffffff"}) for v in VIEWS})
    saved = await save_draft(demo, readable)
    assert saved.status_code == 200, saved.text
    for colours, named in (({"text": "#777777", "background": "#ffffff", "surface": "#ffffff"},
                            ["text #777777 on background #ffffff", "4.47:1"]),
                           ({"background": "#1f2328"}, ["text #1f2328 on background #1f2328", "1.00:1"]),
                           ({"primary": "#ffcc00"}, ["on_primary #ffffff on primary #ffcc00",
                                                     "primary #ffcc00 on background #ffffff (links)"])):
        refused = await save_draft(demo, theme("Unreadable", article=view(colours=colours)))
        assert refused.status_code == 422, refused.text
        body = refused.json()
        assert body["error"] == "invalid_setting" and body["message"].startswith("views.article.colours: ")
        assert all(part in body["message"] for part in [*named, "4.5:1"]), body["message"]
    assert (await demo.admin.get(THEME)).json()["draft"]["name"] == "Readable"  # nothing stored
    assert (await demo.admin.post(f"{THEME}/publish")).status_code == 200


async def test_a_backslash_logo_path_does_not_escape_to_another_host(demo: Demo):
    """Browsers read `/\\evil.example/x.png` as `//evil.example/x.png` (WHATWG URL parsing turns `\\` into `/`
    in http(s) URLs), the protocol-relative form the rule already refuses."""
    response = await save_draft(demo, theme(home=view(logo_url="/\\evil.example/logo.png")))
    assert response.status_code == 422 and response.json()["error"] == "invalid_setting", response.text


async def test_theme_admin_api_is_for_editors(demo: Demo):
    agent = await demo.staff("agent@demo.example.com", "agent")
    customer = await demo.customer("carla@example.com")
    for client in (agent, customer):
        for method, path, body in (("GET", THEME, None), ("PUT", f"{THEME}/draft", theme()),
                                   ("GET", f"{THEME}/preview", None), ("POST", f"{THEME}/publish", None),
                                   ("POST", f"{THEME}/upgrade", None)):
            response = await client.request(method, path, json=body)
            assert response.status_code == 403 and response.json()["error"] == "forbidden", (method, path)
    editor = await demo.staff("editor@demo.example.com", "content_manager")
    assert (await editor.put(f"{THEME}/draft", json=theme("By editor"))).status_code == 200
    assert (await editor.post(f"{THEME}/publish")).status_code == 200
    assert (await demo.browser().get(CONFIG)).json()["theme"]["name"] == "By editor"
    no_draft = await demo.admin.get(f"{THEME}/preview")
    assert no_draft.status_code == 200  # the editor's draft stays as the draft after publishing
    for client in (agent, customer, editor):
        await client.aclose()
