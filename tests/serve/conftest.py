import contextlib
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"  # Debian's, which `make test` installs
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextlib.contextmanager
def page_at(url: str, models: int):
    """The page at `url` in headless Chromium (through playwright), once its model list holds `models`
    entries; the browser closes on leaving."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "the page test needs Chromium (make test installs Debian's chromium)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page()
            page.goto(url)
            page.wait_for_function(f"document.querySelectorAll('#model option').length === {models}")
            yield page
        finally:
            browser.close()


@pytest.fixture
def open_page():
    """`page_at`, for the browser tests."""
    return page_at
