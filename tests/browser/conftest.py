"""Real headless Chromium (Debian's chromium and chromedriver; never a browser download)
driven through Selenium against Django's live test server.

Skipped, with the reason, only where the browser is not installed; bin/test installs it."""

import os
import shutil

import pytest
from django.conf import settings
from django.test import Client

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WIDTH, HEIGHT = 1400, 1000  # the operators' screens (issue 13: lists fit 1400 px)


@pytest.fixture
def browser():
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed (bin/test installs them)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never download
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={WIDTH},{HEIGHT}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


@pytest.fixture
def operator_browser(browser, live_server, operator):
    """The browser with an operator's admin session: browser.get(path) opens a page."""
    client = Client()
    client.force_login(operator)
    browser.get(f"{live_server.url}/admin/login/")
    browser.add_cookie(
        {
            "name": settings.SESSION_COOKIE_NAME,
            "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
            "path": "/",
        }
    )
    opened = browser.get

    def get(path: str) -> None:
        opened(f"{live_server.url}{path}")

    browser.open = get
    return browser
