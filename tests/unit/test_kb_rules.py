"""kb's pure rules: who sees which articles (including staff of another org), CSS subset, slugs."""

import itertools

import pytest

from contracts.errors import ErrorCode, ServiceError
from contracts.kb import Reader
from services.kb import domain

ORG, OTHER = "01JD8ZQ4S5K4W3YB8W1T0VQ9E3", "01JD8ZQ4S5K4W3YB8W1T0VQ9E4"


@pytest.mark.parametrize("for_agents,internal_kb,only_internal", list(itertools.product([False, True], repeat=3)))
def test_visibility_by_reader_and_switches(for_agents, internal_kb, only_internal):
    def seen(reader: Reader) -> set[str]:
        return set(domain.visible_to(reader, portal_org=ORG, portal_for_agents=for_agents, internal_kb=internal_kb,
                                     show_only_internal=only_internal))

    staff_view = ({"internal"} if only_internal else {"public", "internal"}) if for_agents and internal_kb \
        else {"public"}
    for role in ("agent", "content_manager", "admin"):
        assert seen(Reader(kind="staff", org_id=ORG, role=role)) == staff_view
        # Staff of another org read another org's portal as the public does.
        assert seen(Reader(kind="staff", org_id=OTHER, role=role)) == {"public"}
    assert seen(Reader(kind="anonymous")) == {"public"}
    assert seen(Reader(kind="customer", org_id=ORG)) == {"public"}
    assert seen(Reader(kind="staff", org_id=ORG, role="unknown")) == {"public"}


def test_css_is_scoped_and_only_the_safe_subset_passes():
    assert domain.sanitise_css("h1, .hero { color: #123456; font-weight: bold }") == \
        ".portico-portal h1, .portico-portal .hero { color: #123456; font-weight: bold }"
    for bad in ("@import 'x.css';", "a { background: url(javascript:alert(1)) }", "a { width: expression(1) }",
                "a[href] { color: red }", "a { position: fixed }", "a { color: red } </style><script>x</script>",
                "a { color: \\75 rl(javascript:alert(1)) }", "a { -moz-binding: x }"):
        with pytest.raises(ServiceError):
            domain.sanitise_css(bad)
    # Escapes are decoded by the parser and never passed through.
    assert domain.sanitise_css("a { color: \\72 ed }") == ".portico-portal a { color: red }"


def test_markdown_keeps_formatting_and_drops_active_content():
    rendered = domain.render_markdown("# Hi\n\n[ok](https://example.com) [bad](javascript:alert(1))\n\n"
                                      "<script>alert(1)</script>")
    assert "<h1>Hi</h1>" in rendered and 'href="https://example.com"' in rendered
    assert 'href="javascript' not in rendered and "<script" not in rendered  # shown as text, never a link
    assert domain.slugify("Réinitialiser le mot de passe!") == "reinitialiser-le-mot-de-passe"


@pytest.mark.parametrize("css", [
    "a { width: " + "1" * 4301 + "px }",      # past Python's limit on integer strings: tinycss2 raises ValueError
    "a { width: " + "1" * 4301 + " }",
    "a { opacity: " + "9" * 5000 + "% }",
])
def test_css_the_parser_fails_on_is_refused_as_a_setting(css):
    with pytest.raises(ServiceError) as refused:
        domain.sanitise_css(css)
    assert refused.value.code == "invalid_setting" and refused.value.message.startswith("custom_css:")


def test_a_markdown_parser_failure_is_the_clients_error(monkeypatch):
    def broken(_: str) -> str:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(domain._markdown(), "render", broken)
    with pytest.raises(ServiceError) as refused:
        domain.render_markdown("> > > deep", "header", ErrorCode.invalid_setting)
    assert refused.value.code == "invalid_setting" and refused.value.message.startswith("header:")
