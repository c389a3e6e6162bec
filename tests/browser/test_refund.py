"""An operator refunds a payment in the admin, in Chromium: the action asks first, shows
what will move, needs a reason, and only then moves the money."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from payments.models import Payment, PaymentStatus, Wallet
from tests.concerts.factories import ScheduleFactory, SeatFactory
from tests.reservations.waitlist_helpers import buy

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_operator_confirms_a_refund_with_a_reason(operator_browser):
    schedule = ScheduleFactory()
    booking = buy(schedule, SeatFactory(schedule=schedule, price=110_000))
    payment = Payment.objects.get(reservation=booking)
    balance = Wallet.objects.get(user=booking.user).balance
    browser = operator_browser

    browser.open("/admin/payments/payment/")
    browser.find_element(
        By.CSS_SELECTOR, f'input[name="_selected_action"][value="{payment.id}"]'
    ).click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("refund")
    browser.find_element(By.NAME, "index").click()

    reason = browser.find_element(By.NAME, "reason")  # waits for the confirmation page
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "₩112,000" in page  # what will move (price and booking fee), before anything moves
    assert Payment.objects.get(id=payment.id).status == PaymentStatus.COMPLETED

    browser.find_elements(By.CSS_SELECTOR, '#content-main input[type="radio"]')[-1].click()
    reason.send_keys("Show cancelled by the promoter")
    browser.find_element(By.CSS_SELECTOR, '#content-main .submit-row [type="submit"]').click()

    assert "refund" in browser.find_element(By.CSS_SELECTOR, ".messagelist").text.lower()
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    assert Wallet.objects.get(user=booking.user).balance > balance
