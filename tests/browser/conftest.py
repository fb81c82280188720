"""Fixtures of the agents' page tests: one real stack (redis-server, a worker, the API) and one
Debian chromium per module, a fresh browser context (so a fresh session storage) per test.

The browser is Debian's (`make browser` installs it, with axe-core from npm); Playwright only
drives it and never downloads one of its own. Everything listens on 127.0.0.1 and is stopped by
its own handle when the module ends, pass or fail.
"""

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from stack import REPO, Stack, running_stack

from shared.wire.api_keys import Role

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO / "docs" / "img"
# Faults noticed within seconds (a stopped worker's heartbeat lapses after 3 s), a short
# Retry-After for the page to honour, and batch chunks small enough to show progress.
PAGE_SETTINGS: dict[str, object] = {
    "heartbeat_interval_s": 0.5,
    "heartbeat_ttl_s": 3,
    "predict_timeout_s": 5,
    "retry_after_s": 2,
    "batch_chunk_rows": 25,
}


@pytest.fixture(scope="module")
def page_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("page"), concurrency=2, **PAGE_SETTINGS) as running:
        yield running


@pytest.fixture(scope="module")
def keys(page_stack: Stack) -> dict[str, str]:
    """A key of each role, as `realty keys create NAME --role ROLE` makes them."""
    return {
        "agent": page_stack.key("anna.lee", Role.AGENT, rate_per_s=0),
        "batch": page_stack.key("crm-import", Role.BATCH, rate_per_s=0),
        "admin": page_stack.admin_key,
    }


@pytest.fixture(scope="module")
def served(page_stack: Stack) -> dict[str, Any]:
    """The active version as GET /v1/models lists it, with its bundle's manifest (`manifest`):
    what the answer may hold depends on the bundle (ranges, grades, comps)."""
    models = page_stack.http.get(f"{page_stack.api_url}/v1/models", timeout=10).json()
    active = next(m for m in models if m["active"])
    model_dir = Path(page_stack.env["REALTY_MODEL_DIR"])
    manifest = json.loads((model_dir / active["version"] / "manifest.json").read_text())
    return active | {"manifest": manifest}


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Debian's chromium is missing: `make browser` installs it"
    launched = playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
    )
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh profile per test. The page's own Content-Security-Policy forbids inline
    scripts, so bypassing it is what lets a test inject axe-core."""
    fresh = browser.new_context(
        viewport={"width": 1200, "height": 900},
        bypass_csp=True,
        accept_downloads=True,
        locale="en-US",
        timezone_id="America/Los_Angeles",
    )
    fresh.set_default_timeout(20_000)
    try:
        yield fresh
    finally:
        fresh.close()


@pytest.fixture
def page(context: BrowserContext, page_stack: Stack) -> Iterator[Page]:
    """The page at `/`; it fails the test on any script error of the page."""
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.goto(f"{page_stack.api_url}/")
    yield opened
    assert not errors, f"script errors on the page: {errors}"


@pytest.fixture(scope="session")
def axe_source() -> str:
    assert AXE.exists(), "axe-core is missing: `make browser` installs it (npm ci)"
    return AXE.read_text()
