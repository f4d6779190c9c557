"""Limits before upload, reasons after: the composer refuses a 7th file, a file of 3 MB + 1 byte, a `.exe`
and a 10,241-character message before anything is sent (JavaScript on), the server refuses each of them
with the words next to the field and the text kept (JavaScript off), and nothing is stored either way:
no row in any service's database, no object in the attachments bucket."""

from dataclasses import dataclass

from playwright.async_api import Page, expect

from tests.fixtures.files import REFUSED, sample
from tests.kit.browser import screenshots, serious_violations
from tests.kit.conversations import start
from tests.kit.portal import everything_stored, nothing_stored

MB = 1024 * 1024
SERVICES = ("auth", "conversations", "notifications", "kb")
PE = next(data for name, data, _ in REFUSED if name == "pe-renamed.pdf")   # a Windows program
KEPT = "Please keep this text when something is refused."


@dataclass(frozen=True)
class Case:
    name: str
    body: str
    files: list[tuple[str, bytes]]
    field: str            # the field whose error is shown
    before: str           # the words the composer says before sending (JavaScript on)
    status: int           # the server's refusal (JavaScript off)
    after: str            # the words of the server's refusal


CASES = [
    Case("seventh-file", KEPT, [(f"page-{n}.png", sample("png")) for n in range(1, 8)], "files",
         "You chose 7 files; at most 6 can be sent with one message. Remove some.", 422,
         "Too many files are attached. 7 files attached; at most 6 are allowed."),
    Case("too-large", KEPT, [("scan.png", sample("png", 3 * MB + 1))], "files",
         "scan.png is 3,145,729 B; each file can be at most 3,145,728 B.", 413,
         "A file is larger than allowed. scan.png is 3,145,729 bytes; at most 3,145,728 are allowed."),
    Case("program", KEPT, [("setup.exe", PE)], "files",
         "setup.exe cannot be sent: we accept CSV, DOC, DOCX, GIF, JPG, PDF, PNG, XLSX, XML.", 415,
         "A file is of a type we cannot accept."),
    Case("too-long", "x" * 10_241, [], "body",
         "Your message has 10,241 characters; at most 10,240 are allowed. Please shorten it.", 422,
         "Your message is too long. The message has 10,241 characters; at most 10,240 are allowed."),
]


async def signed_in(chromium, demo, **options) -> Page:  # type: ignore[no-untyped-def]
    page = await chromium.page(demo.base_url, **options)
    await page.context.add_cookies([{"name": name, "value": value, "url": demo.base_url}
                                    for name, value in demo.ana.cookies.items()])
    return page


def as_files(case: Case) -> list[dict]:
    return [{"name": name, "mimeType": "application/octet-stream", "buffer": data} for name, data in case.files]


async def fill_in(page: Page, case: Case) -> None:
    await page.get_by_label("Your reply").fill(case.body)
    if case.files:
        await page.get_by_label("Attach files (optional)").set_input_files(as_files(case))


async def test_each_limit_is_said_before_anything_is_sent(demo, chromium) -> None:
    cid = (await start(demo.ana, subject="Scanner trouble"))["id"]
    page = await signed_in(chromium, demo)
    posted: list[str] = []
    page.on("request", lambda request: posted.append(request.url) if request.method == "POST" else None)
    await page.goto(f"/portals/demo/conversations/{cid}")
    before = await everything_stored(demo)
    for case in CASES:
        await page.goto(f"/portals/demo/conversations/{cid}")
        await fill_in(page, case)
        control = page.locator(f"#composer-{case.field}")
        error = page.locator(f"#composer-{case.field}-error")
        # Said as soon as the file is chosen or the text typed, next to the field.
        await expect(error, case.name).to_have_text(case.before)
        await expect(control, case.name).to_have_attribute("aria-invalid", "true")
        assert "composer-%s-error" % case.field in (await control.get_attribute("aria-describedby") or "")
        if case.field == "body":
            await expect(page.locator("#composer-body-count")).to_have_text("10,241 of 10,240 characters")
        await page.get_by_role("button", name="Send").click()
        summary = page.locator("#composer-summary")
        await expect(summary, case.name).to_be_visible()
        await expect(summary, case.name).to_contain_text(case.before)
        await expect(summary).to_be_focused()
        await expect(page.get_by_label("Your reply")).to_have_value(case.body)
        assert posted == [], (case.name, posted)
        assert await serious_violations(page) == [], case.name
        await screenshots(page, f"composer-before-{case.name}")
    await nothing_stored(demo, before)

    # A file removed from the message is gone from it; the other files stay.
    await page.goto(f"/portals/demo/conversations/{cid}")
    await fill_in(page, CASES[0])
    await page.get_by_role("button", name="Remove page-7.png").click()
    await expect(page.locator("#composer-files-error")).to_be_hidden()
    await expect(page.locator("#composer-file-list li")).to_have_count(6)
    assert await page.locator("#composer-files").evaluate("input => input.files.length") == 6


async def test_what_the_server_refuses_is_said_next_to_the_field_and_the_text_and_files_stay(demo, chromium) -> None:
    """A file that looks right by its name and size, but is not (a truncated PNG): the composer sends it,
    the server refuses it, and the words appear without a reload, with the text and files in place."""
    cid = (await start(demo.ana, subject="Scanner trouble"))["id"]
    page = await signed_in(chromium, demo)
    await page.goto(f"/portals/demo/conversations/{cid}")
    before = await everything_stored(demo)
    await page.get_by_label("Your reply").fill(KEPT)
    broken = next(data for name, data, _ in REFUSED if name == "truncated.png")
    await page.get_by_label("Attach files (optional)").set_input_files([
        {"name": "photo.png", "mimeType": "image/png", "buffer": sample("png")},
        {"name": "truncated.png", "mimeType": "image/png", "buffer": broken}])
    async with page.expect_response(f"**/api/v1/portals/demo/conversations/{cid}/messages") as refused:
        await page.get_by_role("button", name="Send").click()
    assert (await refused.value).status == 422
    error = page.locator("#composer-files-error")
    await expect(error).to_contain_text("A file is damaged or could not be read.")
    await expect(error).to_contain_text("truncated.png")
    await expect(page.get_by_label("Your reply")).to_have_value(KEPT)
    await expect(page.locator("#composer-file-list li")).to_have_count(2)
    await nothing_stored(demo, before)
    await screenshots(page, "composer-server-refused")

    await page.get_by_role("button", name="Remove truncated.png").click()
    await page.get_by_role("button", name="Send").click()
    mine = page.locator("#timeline .message.mine", has_text=KEPT)
    await expect(mine).to_be_visible()
    await expect(mine.get_by_role("link", name="photo.png")).to_be_visible()
    await expect(page.get_by_label("Your reply")).to_have_value("")


async def test_with_javascript_off_the_server_says_what_is_wrong_and_keeps_the_text(demo, chromium) -> None:
    cid = (await start(demo.ana, subject="Scanner trouble"))["id"]
    page = await signed_in(chromium, demo, javascript=False)
    await page.goto(f"/portals/demo/conversations/{cid}")
    before = await everything_stored(demo)
    for case in CASES:
        await page.goto(f"/portals/demo/conversations/{cid}")
        await fill_in(page, case)
        async with page.expect_navigation() as sent:
            await page.get_by_role("button", name="Send").click()
        response = await sent.value
        assert response is not None and response.status == case.status, case.name
        error = page.locator(f"#composer-{case.field}-error")
        await expect(error, case.name).to_contain_text(case.after)
        await expect(page.locator(f"#composer-{case.field}")).to_have_attribute("aria-invalid", "true")
        await expect(page.locator("#composer-summary").get_by_role("link")).to_have_text(await error.inner_text())
        await expect(page.get_by_label("Your reply")).to_have_value(case.body)
        await expect(page.locator("#composer-files-again")).to_contain_text("please choose them again")
        await screenshots(page, f"composer-after-{case.name}")
    await nothing_stored(demo, before)

    # Closed while the customer was writing: the words, the text kept, and the way to reopen it.
    await page.goto(f"/portals/demo/conversations/{cid}")
    await page.get_by_label("Your reply").fill(KEPT)
    assert (await demo.agent.post(f"/api/v1/agent/conversations/{cid}/close")).status_code == 200
    before = await everything_stored(demo)
    async with page.expect_navigation() as sent:
        await page.get_by_role("button", name="Send").click()
    assert (await sent.value).status == 409  # type: ignore[union-attr]
    await expect(page.locator("#composer-summary")).to_contain_text("This conversation is closed.")
    await expect(page.get_by_label("Your reply")).to_have_value(KEPT)
    await expect(page.get_by_role("button", name="Reopen this conversation")).to_be_visible()
    await nothing_stored(demo, before)


async def test_a_refused_new_conversation_keeps_its_subject_and_text_without_javascript(demo, chromium) -> None:
    page = await signed_in(chromium, demo, javascript=False)
    await page.goto("/portals/demo/conversations/new")
    before = await everything_stored(demo)   # after the first page: the portal's pages are set up by then
    await page.get_by_label("Subject").fill("A very long story")
    await page.get_by_label("Your message").fill("y" * 10_241)
    await page.get_by_label("Attach files (optional)").set_input_files(
        [{"name": "photo.png", "mimeType": "image/png", "buffer": sample("png")}])
    async with page.expect_navigation() as sent:
        await page.get_by_role("button", name="Send").click()
    response = await sent.value
    assert response is not None and response.status == 422
    await expect(page.locator("#composer-body-error")).to_contain_text("Your message is too long.")
    await expect(page.get_by_label("Subject")).to_have_value("A very long story")
    await expect(page.get_by_label("Your message")).to_have_value("y" * 10_241)
    await nothing_stored(demo, before)   # the file was stored, then deleted with the refusal
    await screenshots(page, "conversation-new-refused")
