"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, at a phone's size.

Playwright never downloads a browser here: it is pointed at the installed binary. Pages are
served by the real app on a loopback socket. Screenshots of each step are kept under
``test-artifacts/`` for people to look at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from koudai_flask.schema import create_all
from tests.conftest import unavailable

CHROMIUM = os.environ.get("KOUDAI_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent.parent.parent / "test-artifacts"
PHONE = {"width": 375, "height": 812}
PHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
# Every cell of every table on the page that reaches past the screen's right edge, and every
# table wider than the screen (one that scrolls inside its own box).
PAST_THE_SCREEN = """width => [...document.querySelectorAll('table')]
    .filter(table => table.offsetParent !== null)
    .flatMap(table => {
        const name = '#' + (table.id || table.className);
        const cut = [...table.querySelectorAll('td')]
            .filter(td => td.offsetParent !== null)
            .filter(td => td.getBoundingClientRect().right > width + 1)
            .map(td => `${name} cell "${td.textContent.trim().slice(0, 30)}"`);
        return table.scrollWidth > width ? [`${name}: ${table.scrollWidth}px`, ...cut] : cut;
    })"""
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[test]')")
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        unavailable(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE, user_agent=PHONE_UA, locale="zh-CN")
    page = context.new_page()
    yield page
    context.close()


class Shots:
    """Numbered screenshots of one test's steps."""

    def __init__(self, name: str) -> None:
        self.folder = ARTIFACTS / name
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.count = 0

    def __call__(self, page: Any, step: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    return Shots(request.node.name.replace("[", "-").replace("]", ""))


def sqlite_shop(folder: Path, name: str) -> str:
    """The URL of a new SQLite file holding koudai's tables: a served app's threads share it."""
    url = f"sqlite:///{folder / name}"
    engine = create_engine(url)
    create_all(engine)
    engine.dispose()
    return url


def buyer_login(page: Any, base: str, login: str, password: str) -> None:
    """Sign in to the shop's own accounts as a buyer and wait to be sent back to the shop."""
    page.goto(f"{base}/shop/account/login")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", password)
    page.locator("form.kd-form button[type=submit]").click()
    page.wait_for_url("**/shop/**")


def staff_login(page: Any, base: str, email: str, password: str) -> None:
    """Open the back office, get sent to its login, and sign in as ``email``."""
    page.goto(f"{base}/shop-admin/")
    page.wait_for_url("**/shop-admin/login**")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.locator("button[type=submit]").last.click()
