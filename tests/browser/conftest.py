"""Browser fixtures: the portal on a loopback port, and Debian's Chromium driven by Playwright."""

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import IN_CI

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM) and not shutil.which("chromium"):
        if IN_CI:
            pytest.fail("Chromium is missing: install Debian's chromium package")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A tab; whatever the test does, the browser must refuse nothing under the portal's
    Content-Security-Policy (an inline script, handler or style would be refused and reported)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    refused = []
    tab.on(
        "console",
        lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
    )
    yield tab
    context.close()
    assert refused == [], f"the browser refused under the CSP: {refused}"


@pytest.fixture
def shot():
    ARTIFACTS.mkdir(exist_ok=True)

    def take(page, name):
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
