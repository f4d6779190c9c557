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


# -- theme colours: contrast (WCAG 2.1 AA) -----------------------------------------------------------

def test_contrast_ratio_follows_wcag():
    assert domain.contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert domain.contrast_ratio("#ffffff", "#000000") == pytest.approx(21.0)  # order does not matter
    assert domain.contrast_ratio("#777777", "#777777") == pytest.approx(1.0)
    assert domain.contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert domain.contrast_ratio("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)
    assert domain.relative_luminance("#ffffff") == pytest.approx(1.0)
    assert domain.relative_luminance("#FF0000") == pytest.approx(0.2126)


def test_text_that_fails_aa_against_its_background_is_refused_with_the_ratio():
    domain.check_contrast({"text": "#767676", "background": "#ffffff", "surface": "#ffffff"})  # 4.54:1, accepted
    with pytest.raises(ServiceError) as refused:
        domain.check_contrast({"text": "#777777", "background": "#ffffff"}, "views.home.colours")
    message = refused.value.message
    assert refused.value.code == "invalid_setting" and message.startswith("views.home.colours: ")
    assert "text #777777 on background #ffffff" in message and "4.47:1" in message and "4.5:1" in message


def test_contrast_is_checked_against_the_stylesheets_defaults_for_colours_left_out():
    domain.check_contrast({})  # the defaults themselves pass
    domain.check_contrast({"primary": "#112233"})
    # A dark background alone leaves the default dark text on it.
    with pytest.raises(ServiceError) as dark:
        domain.check_contrast({"background": "#111111"})
    assert "text #1f2328 on background #111111" in dark.value.message
    # A complete dark theme passes.
    domain.check_contrast({"background": "#111111", "text": "#eeeeee", "surface": "#222222", "muted": "#aaaaaa",
                           "danger": "#ff8a80", "primary": "#8ab4f8", "on_primary": "#111111"})


def test_button_labels_and_links_need_contrast_with_the_primary_colour():
    with pytest.raises(ServiceError) as pale:
        domain.check_contrast({"primary": "#abcdef"})  # white labels on it, and links in it on white
    assert "on_primary #ffffff on primary #abcdef (button labels)" in pale.value.message
    assert "primary #abcdef on background #ffffff (links)" in pale.value.message
    with pytest.raises(ServiceError) as yellow:  # links fine on black, white labels on yellow not
        domain.check_contrast({"primary": "#ffff00", "background": "#000000", "text": "#ffffff",
                               "surface": "#000000", "muted": "#ffffff", "danger": "#ff8a80"})
    assert yellow.value.message.count(" on ") == 1 and "on_primary #ffffff on primary #ffff00" in yellow.value.message
    domain.check_contrast({"primary": "#ffff00", "on_primary": "#000000", "background": "#000000", "text": "#ffffff",
                           "surface": "#000000", "muted": "#ffffff", "danger": "#ff8a80"})


def test_the_stylesheets_defaults_are_the_ones_the_rule_assumes():
    from pathlib import Path
    import re

    css = (Path(__file__).resolve().parents[2] / "services/gateway/web/static/portal.css").read_text()
    defaults = dict(re.findall(r"--([a-z_]+):\s*(#[0-9a-f]{6});", css.split("}", 1)[0]))
    assert "background: var(--primary); color: var(--on_primary)" in css  # buttons: the pair the rule checks
    assert {name: defaults.get(name) for name in domain.PORTAL_COLOURS} == domain.PORTAL_COLOURS


@pytest.mark.parametrize("colours", [{"primary": "#123456\n"}, {"primary\n": "#123456"},
                                     {"primary": "#123456;}</style>"}, {"x" * 41: "#123456"},
                                     {f"c{i}": "#123456" for i in range(41)}])
def test_colour_names_and_values_are_matched_whole(colours):
    with pytest.raises(ServiceError) as refused:
        domain.check_colours(colours)
    assert refused.value.code == "invalid_setting"
