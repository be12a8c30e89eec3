"""The admin console in a real browser (headless Chromium driven by Playwright) against a
real server with demo data: the restore wizard, live progress, the access review and its
billing, with no request leaving the server's origin and no console error."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from recoverly.models import InstanceOperation
from tests.conftest import DEMO_TOKEN, Deployment, deploy

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HAS_CHROMIUM = Path(CHROMIUM).exists()
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("RECOVERLY_SCREENSHOTS", REPO / "test-artifacts" / "console"))
STATIC = REPO / "recoverly" / "static" / "console"
TIMEOUT_MS = 60_000
browser_test = pytest.mark.skipif(
    not HAS_CHROMIUM, reason="no chromium: apt-get install -y chromium (.ci/run does)"
)


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    """One demo server for the module: the tests follow one admin's morning in order."""
    async with deploy("sqlite", tmp_path_factory.mktemp("console")) as deployed:
        yield deployed


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    if not HAS_CHROMIUM:
        pytest.skip("no chromium: apt-get install -y chromium (.ci/run does)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


class Console:
    """A browser tab on the console that records console errors and every request."""

    def __init__(self, page: Any, server: Deployment) -> None:
        self.page = page
        self.server = server
        self.problems: list[str] = []
        self.urls: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.problems.append(m.text))
        page.on("pageerror", lambda error: self.problems.append(str(error)))
        page.on("request", lambda request: self.urls.append(request.url))
        page.on("websocket", lambda ws: self.urls.append(ws.url))

    async def open(self, route: str) -> None:
        await self.page.goto(f"{self.server.url}/#/{route}")
        await self.page.get_by_role("heading", level=1).wait_for()

    async def shot(self, name: str) -> None:
        await asyncio.to_thread(SHOTS.mkdir, parents=True, exist_ok=True)
        await self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def assert_clean(self, *, refused_once: bool = False) -> None:
        """No console error (but the browser's own line for a refused token, when the test
        used one), and every request went to the server itself."""
        problems = list(self.problems)
        if refused_once:
            refusal = "Failed to load resource: the server responded with a status of 401"
            assert [p for p in problems if p.startswith(refusal)], problems
            problems = [p for p in problems if not p.startswith(refusal)]
        assert not problems, problems
        origins = (self.server.url + "/", self.server.ws_url)
        foreign = [url for url in self.urls if not url.startswith(origins)]
        assert not foreign, foreign


@pytest.fixture
async def console(browser: Any, server: Deployment) -> AsyncIterator[Console]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    tab = Console(page, server)
    await page.goto(f"{server.url}/#token={DEMO_TOKEN}")
    await page.get_by_role("button", name="Sign out").wait_for()
    yield tab
    await context.close()


@asynccontextmanager
async def site_busy(server: Deployment, site: str) -> AsyncIterator[None]:
    """Hold the site's operation lock, as a running backup does."""
    instance_id = server.demo.instances[site]
    async with server.runtime.db.transaction() as session:
        session.add(InstanceOperation(instance_id=instance_id, kind="backup", ref_id=0))
    try:
        yield
    finally:
        async with server.runtime.db.transaction() as session:
            row = await session.get(InstanceOperation, instance_id)
            assert row is not None
            await session.delete(row)


async def choose_backup(page: Any, product: str) -> None:
    """Steps 1 to 3: the product, its newest available backup, default options."""
    await page.get_by_role("radio", name=re.compile(f"^{product}")).check()
    await page.get_by_role("button", name="Next").click()
    available = page.locator("input[name=backup]:not([disabled])").first
    await available.check()
    chosen = page.locator("label.choice", has=page.locator("input[name=backup]:checked"))
    await expectation(chosen).to_contain_text("Stored in: Internal storage")
    await page.get_by_role("button", name="Next").click()
    await page.get_by_role("heading", name=re.compile("Options")).wait_for()
    await page.get_by_role("button", name="Next").click()
    await page.get_by_role("heading", name=re.compile("Destination")).wait_for()


def expectation(locator: Any) -> Any:
    from playwright.async_api import expect

    return expect(locator)


def destination(page: Any, name: str) -> Any:
    return page.locator(f'label.choice[data-site="{name}"]')


@browser_test
async def test_jira_wizard_live_progress_and_approval_billing(
    console: Console, server: Deployment
) -> None:
    """A Jira backup restored into the empty sandbox through every step, followed live to
    100%, then its contractors review approved: billing grows by the preview's impact."""
    page = console.page
    await console.open("restore")
    # An expired backup is listed but cannot be chosen, with the reason and the hint.
    await page.get_by_role("radio", name=re.compile("^Jira")).check()
    await page.get_by_role("button", name="Next").click()
    await expectation(page.get_by_role("heading", name=re.compile("Backup"))).to_be_focused()
    expired = page.locator("label.choice.disabled", has_text="Expired")
    await expectation(expired).to_contain_text("create a backup policy")
    await page.get_by_role("button", name="Back").click()

    async with site_busy(server, "acme_jira_sandbox"):
        await choose_backup(page, "Jira")
        busy, full = destination(page, "Acme Jira Sandbox"), destination(page, "Acme Jira")
        await expectation(busy.locator("input")).to_be_disabled()
        await expectation(busy.locator(".reason")).to_contain_text("already in progress")
        await expectation(full.locator("input")).to_be_disabled()
        await expectation(full.locator(".reason")).to_contain_text("already holds projects")
        await console.shot("wizard-destination")
    await page.get_by_role("button", name="Check the sites again").click()
    sandbox = destination(page, "Acme Jira Sandbox").locator("input")
    await expectation(sandbox).to_be_enabled()
    await sandbox.check()
    await page.get_by_role("button", name="Review").click()

    contractors = page.locator("ul.reviews li", has_text="contractors")
    impact = int(await contractors.locator(".impact").inner_text())
    assert impact > 0
    # One row per project of the backup: created in the empty sandbox, nothing to compare.
    ops = page.locator('table.items tr[data-key="OPS"]')
    await expectation(ops.locator(".action")).to_have_text("Create")
    await expectation(ops.locator(".diff")).to_have_text("not in the destination")
    await expectation(ops).to_contain_text(" issues")
    await console.shot("wizard-review")

    # The site became busy meanwhile: the error shows in place, every choice stays.
    async with site_busy(server, "acme_jira_sandbox"):
        await page.get_by_role("button", name="Restore").click()
        await expectation(page.get_by_role("alert")).to_contain_text("already in progress")
    await expectation(page.get_by_role("heading", name=re.compile("Review"))).to_be_visible()
    await expectation(page.locator("dl.facts")).to_contain_text("Acme Jira Sandbox")

    await page.evaluate(
        """() => {
          window.seenPercents = [];
          new MutationObserver(() => {
            const bar = document.querySelector("tr.highlight [role=progressbar]");
            if (bar) window.seenPercents.push(Number(bar.getAttribute("aria-valuenow")));
          }).observe(document.body, { subtree: true, childList: true, attributes: true });
        }"""
    )
    await page.get_by_role("button", name="Restore").click()
    row = page.locator("tr.highlight")
    await expectation(row).to_contain_text("Acme Jira Sandbox")
    await expectation(row).to_contain_text("admin@acme.example")
    await console.shot("restores-running")
    await expectation(row.locator(".status")).to_have_text("Completed", timeout=TIMEOUT_MS)
    bar = row.get_by_role("progressbar")
    await expectation(bar).to_have_attribute("aria-valuenow", "100")
    seen = await page.evaluate("window.seenPercents")
    assert seen == sorted(seen), seen
    assert seen[0] < 100 and seen[-1] == 100, seen
    await console.shot("restores")

    await page.get_by_label("Status").select_option("COMPLETED")
    await expectation(page.locator("tbody tr").first).to_contain_text("Completed")

    await console.open("access")
    billing = page.locator('.billable[data-product="JIRA"]')
    before = int(await billing.inner_text())
    review = page.locator('li.review[data-group="contractors"]')
    await expectation(review.locator(".impact")).to_have_text(f"{impact} new billable users")
    await console.shot("access")
    await review.get_by_role("button", name="Approve Jira access for contractors").click()
    await expectation(billing).to_have_text(str(before + impact))
    await expectation(page.locator("table").first).to_contain_text("Approved")
    console.assert_clean()


@browser_test
async def test_confluence_restore_shows_its_skipped_spaces_before_it_starts(
    console: Console, server: Deployment
) -> None:
    page = console.page
    await console.open("restore")
    await choose_backup(page, "Confluence")
    target = destination(page, "Acme Confluence Restore Target")
    skipped = (await target.locator(".skipped").inner_text()).split(": ", 1)[1].split(", ")
    assert skipped
    await target.locator("input").check()
    await page.get_by_role("button", name="Review").click()
    await expectation(page.locator("dd.skipped")).to_have_text(", ".join(skipped))
    await page.get_by_role("button", name="Restore").click()
    row = page.locator("tr.highlight")
    await expectation(row.locator(".status")).to_have_text("Completed", timeout=TIMEOUT_MS)
    await expectation(row).to_contain_text(f"Skipped spaces: {', '.join(skipped)}")
    console.assert_clean()


@browser_test
async def test_back_up_now_policies_audit_and_signing_in_by_token(
    console: Console, server: Deployment
) -> None:
    page = console.page
    await console.open("backups")
    card = page.locator(
        "li.card", has=page.get_by_role("heading", name="Acme Confluence", exact=True)
    )
    await card.get_by_role("button", name="Back up now").click()
    await expectation(card.locator(".status")).to_have_text("Completed", timeout=TIMEOUT_MS)
    await expectation(card.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")

    form = page.locator("form", has_text="New backup policy")
    await form.get_by_label("Name").fill("Nightly sandbox")
    await form.get_by_role("button", name="Create policy").click()
    policy = page.locator("tr", has_text="Nightly sandbox")
    await policy.get_by_role("button", name="Deactivate").click()
    await expectation(policy).to_contain_text("Inactive")
    await console.shot("backups")

    await console.open("audit")
    await page.get_by_label("Actions").fill("backup_policy.deactivate")
    await page.get_by_role("button", name="Apply filters").click()
    await expectation(page.locator("table.audit tbody tr")).to_have_count(1)
    await console.shot("audit")

    # Sign out; a link with a wrong token is refused; sign in by pasting the token.
    await page.get_by_role("button", name="Sign out").click()
    assert await page.evaluate("localStorage.getItem('recoverly:token')") is None
    await page.goto(f"{server.url}/#token=not-a-token")
    await expectation(page.get_by_role("alert")).to_contain_text("token was refused")
    assert await page.evaluate("localStorage.getItem('recoverly:token')") is None
    await page.get_by_label("API token").fill(DEMO_TOKEN)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_label("Organization").select_option(label="Initech")
    await page.get_by_role("link", name="Backups").click()
    await expectation(page.locator("main")).to_contain_text("Initech Jira")

    await page.set_viewport_size({"width": 390, "height": 844})
    await console.open("access")
    await page.locator("table").first.wait_for()
    await console.shot("phone-access")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the page scrolls sideways at a phone width"
    console.assert_clean(refused_once=True)


async def test_the_console_is_served_without_a_token(server: Deployment) -> None:
    """Its files need no token; its GraphQL calls do."""
    async with server.client(token=None) as client:
        page = await client.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assets = re.findall(r'"(/console/[^"]+)"', page.text)
        assert len(assets) == 5, assets
        for asset in assets:
            assert (await client.get(asset)).status_code == 200, asset
        denied = await client.post("/graphql", json={"query": "{ viewer { id } }"})
        assert denied.status_code == 401


def test_the_vendored_view_library_matches_its_pins() -> None:
    """VERSIONS.txt (written by scripts/refresh_console.py) pins every vendored file."""
    vendor = STATIC / "vendor"
    pinned = [line.split() for line in (vendor / "VERSIONS.txt").read_text().splitlines()]
    pinned = [row for row in pinned if row and not row[0].startswith("#")]
    assert {name for _, name, _ in pinned} == {p.name for p in vendor.iterdir()} - {"VERSIONS.txt"}
    for _spec, name, digest in pinned:
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name
