"""The operator console in Chromium: the dashboard redraws itself as the sale moves, without
reloading the page; a customer's whole story is one page away from a search."""

import base64
import os
import time
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By

from tests.accounts.factories import UserFactory
from tests.concerts.factories import ScheduleFactory, SeatFactory
from tests.reservations.waitlist_helpers import buy, hold, seats_of

pytestmark = pytest.mark.django_db(transaction=True)

DOCS = Path(__file__).resolve().parents[2] / "docs"


def wait_for(check, seconds: float = 12.0):
    deadline = time.monotonic() + seconds
    while True:
        try:
            result = check()
        except StaleElementReferenceException:  # redrawn between finding and reading it
            result = None
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def save_whole_page(browser, path: Path) -> None:
    """A screenshot of the whole page, below the fold too (Chrome's own capture)."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": 1400, "height": min(height, 5000), "scale": 1},
        },
    )
    path.write_bytes(base64.b64decode(shot["data"]))


def test_the_dashboard_follows_the_sale_without_reloading(operator_browser):
    schedule = ScheduleFactory()
    vip = seats_of(schedule, "VIP", "A", rows=2, per_row=10, price=165_000)
    r = seats_of(schedule, "R", "B", rows=3, per_row=12, price=110_000)
    buy(schedule, *vip[:4])
    buy(schedule, *r[:3])
    hold(schedule, r[5], r[6])
    browser = operator_browser

    browser.open(f"/admin/console/concerts/{schedule.concert_id}/dashboard/?schedule={schedule.id}")

    def sold() -> str:
        return browser.find_element(By.CSS_SELECTOR, '[data-field="seat_map.counts.s"]').text

    assert wait_for(lambda: sold() == "7")
    assert wait_for(
        lambda: len(browser.find_elements(By.CSS_SELECTOR, "#console-seat-map .s-s")) == 7
    )
    browser.execute_script("window.stillTheSamePage = true;")

    buy(schedule, *vip[10:12])  # two more sold while the operator watches

    assert wait_for(lambda: sold() == "9")
    assert wait_for(
        lambda: len(browser.find_elements(By.CSS_SELECTOR, "#console-seat-map .s-s")) == 9
    )
    assert browser.execute_script("return window.stillTheSamePage === true;")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 1400
    if os.environ.get("DOCS_SCREENSHOTS"):  # DOCS_SCREENSHOTS=1 bin/test tests/browser
        save_whole_page(browser, DOCS / "console-dashboard.png")


def test_an_operator_finds_a_customers_whole_story(operator_browser):
    customer = UserFactory(email="minji@example.com", name="김민지")
    token = Token.objects.create(user=customer)
    schedule = ScheduleFactory()
    buy(schedule, SeatFactory(schedule=schedule, price=110_000), buyer=customer)
    browser = operator_browser

    browser.open("/admin/console/customers/?q=민지")
    browser.find_element(By.PARTIAL_LINK_TEXT, "minji@example.com").click()

    page = browser.find_element(By.TAG_NAME, "body").text
    assert "김민지" in page
    assert "₩112,000" in page  # the payment: the ticket and its booking fee
    assert token.key not in browser.page_source and token.key[:6] in browser.page_source
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 1400
