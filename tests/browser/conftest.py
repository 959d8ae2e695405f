"""Fixtures of the browser tests: headless Debian Chromium driven by Playwright, and local servers.

Playwright's own browser download (``playwright install``) is never used: the course runs offline
except for package registries, so the tests launch the ``chromium`` that Debian installs (CI runs
``apt-get install chromium``; ``SEGEDU_CHROMIUM`` names another binary). Chromium is started with its
background services off (component updates, sync, safe-browsing and similar fetches): with no network
it would otherwise retry them for the whole run. Every server these tests talk to listens on
127.0.0.1 and is stopped by the fixture that started it.

Every test under ``tests/browser/`` gets the ``browser`` marker, so ``make test`` runs them in their
own stage (:mod:`segedu.instructor.testrun`) and ``-m "not browser"`` leaves them out.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BROWSER_DIR = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("SEGEDU_CHROMIUM", "/usr/bin/chromium")
# --no-sandbox: CI and the instructor's container run as root, where Chromium's sandbox refuses to start.
# The rest stop the fetches a fresh profile makes in the background (updates, sync, field trials, QUIC).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}


def pytest_collection_modifyitems(config, items):
    """Mark every test in this folder ``browser`` (the marker is registered in pyproject.toml)."""
    for item in items:
        if BROWSER_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium (Debian's), shared by the session's tests; each test opens its own context."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"No Chromium at {CHROMIUM}: the browser tests drive Debian's chromium, never a downloaded one. "
            "Install it with `sudo apt-get install chromium` (or set SEGEDU_CHROMIUM to a Chromium binary)."
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: `pip install -e '.[dev]'` installs it (never run `playwright install`).")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def _page_and_errors(browser):
    """One fresh context and page, and the list its error listeners fill (shared by two fixtures)."""
    errors: list[str] = []
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.on("console", lambda message: errors.append(f"console {message.type}: {message.text}")
            if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: errors.append(f"request failed: {request.url}"))
    try:
        yield page, errors
    finally:
        context.close()


@pytest.fixture
def page(_page_and_errors):
    """A fresh page (1280x900) in its own browser context, closed after the test."""
    return _page_and_errors[0]


@pytest.fixture
def console_errors(_page_and_errors):
    """What went wrong on ``page`` so far: console errors, uncaught page errors, failed requests.

    A live list of strings ("console error: ...", "page error: ...", "request failed: URL"); read it
    after the page has settled.
    """
    return _page_and_errors[1]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


@pytest.fixture
def serve_static():
    """A factory: ``serve_static(folder) -> "http://127.0.0.1:PORT/"``, a static server stopped after the test."""
    servers = []

    def serve(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name=f"serve {folder}", daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """``build/browser/`` of the repository, where the browser tests save their screenshots."""
    path = REPO / "build" / "browser"
    path.mkdir(parents=True, exist_ok=True)
    return path
