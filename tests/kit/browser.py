"""Debian's Chromium driven by Playwright, for the page tests: launching it, screenshots saved as the
run's artefacts, and the axe-core scan.

Screenshots go to `$PORTICO_TEST_ARTIFACTS/screenshots/` (default `test-artifacts/screenshots/` in the
repository, which git ignores): `<name>-desktop.png` (1280 px) and `<name>-phone.png` (375 px).
"""

import os
import shutil
from pathlib import Path

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = os.environ.get("PORTICO_TEST_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps calling out, and a closed network refuses it.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update", "--disable-dev-shm-usage"]
ARTIFACTS = Path(os.environ.get("PORTICO_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}
SERIOUS = frozenset({"serious", "critical"})


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None. `.ci/run` installs Debian's `chromium`."""
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)"
    return None


class Chromium:
    """One headless Chromium for a test; `page()` opens a new context (its own cookies)."""

    def __init__(self) -> None:
        self._playwright = None
        self.browser: Browser | None = None

    async def start(self) -> "Chromium":
        self._playwright = await async_playwright().start()
        self.browser = await self._playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                              headless=True)
        return self

    async def page(self, base_url: str, *, locale: str = "en-GB", javascript: bool = True,
                   timezone_id: str = "Europe/Berlin", **options: object) -> Page:
        assert self.browser is not None
        context = await self.browser.new_context(base_url=base_url, locale=locale, java_script_enabled=javascript,
                                                 timezone_id=timezone_id, viewport=DESKTOP, **options)
        context.set_default_timeout(10_000)
        return await context.new_page()

    async def stop(self) -> None:
        if self.browser is not None:
            await self.browser.close()
        if self._playwright is not None:
            await self._playwright.stop()


async def screenshots(page: Page, name: str) -> list[Path]:
    """Save the page as it is now at desktop and phone width (full page); the viewport is put back."""
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    before = page.viewport_size or DESKTOP
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        await page.set_viewport_size(size)
        path = folder / f"{name}-{label}.png"
        await page.screenshot(path=str(path), full_page=True)
        saved.append(path)
    await page.set_viewport_size(before)
    return saved


async def no_horizontal_scroll(page: Page) -> bool:
    """At the current width, whether the page fits without scrolling sideways (small screens)."""
    return await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


async def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now, one line each (empty: none)."""
    results = await Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in results.response["violations"] if v.get("impact") in SERIOUS]


async def checked(page: Page, name: str) -> None:
    """The page as it is now: no serious or critical axe violation, fits 375 px without scrolling
    sideways, and its screenshots saved (desktop and phone)."""
    assert await serious_violations(page) == []
    await page.set_viewport_size(PHONE)
    assert await no_horizontal_scroll(page)
    await page.set_viewport_size(DESKTOP)
    await screenshots(page, name)
