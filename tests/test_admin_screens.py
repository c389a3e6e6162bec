"""Admin as an operator sees it: the wide lists fit a 1400 px wide browser window without
scrolling sideways, and "View site" leads somewhere.

The widths are measured, not estimated: each changelist is rendered with realistic data
(long emails, long concert titles), opened in headless Chromium at 1400 x 900 with admin's
own CSS and JavaScript (the navigation sidebar open, as it is by default, and the filter
column), and the table's scroll width compared with its box. Without Chromium these tests
are skipped; Debian's `chromium` package provides it (fonts: DejaVu/Liberation, wider than
most operators' system fonts, so a pass here has room to spare elsewhere)."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import django.contrib.admin
import pytest
from django.utils import timezone

from tests.accounts.factories import UserFactory
from tests.concerts.factories import ConcertFactory, ScheduleFactory
from tests.reservations.waitlist_helpers import buy, hold, join, seats_of

pytestmark = pytest.mark.django_db

CHROMIUM = next(
    (
        path
        for name in ("chromium", "chromium-browser", "google-chrome")
        if (path := shutil.which(name))
    ),
    None,
)
ADMIN_STATIC = Path(django.contrib.admin.__file__).parent / "static"
WINDOW = (1400, 900)

WIDE_LISTS = [
    "/admin/reservations/reservation/",
    "/admin/payments/payment/",
    "/admin/payments/ledgerentry/",
    "/admin/concerts/seat/",
    "/admin/reservations/waitlistentry/",
    "/admin/payments/wallet/",
    "/admin/payments/cancellation/",
    "/admin/concerts/schedule/",
]

# Made after all the script's work: the table's scroll width and its box, and the page's.
MEASURE = """
<script>
window.addEventListener("load", () => setTimeout(() => {
  const results = document.querySelector("#changelist-form .results");
  document.title = "MEASURED " + JSON.stringify({
    table: results.scrollWidth, box: results.clientWidth,
    page: document.documentElement.scrollWidth, window: window.innerWidth,
    sidebar: document.getElementById("main").classList.contains("shifted"),
  });
}, 50));
</script>
"""


@pytest.fixture
def busy_sale():
    """A sold-out performance of a long-titled concert, bought by customers with long email
    addresses; holds, refunds, a waitlist."""
    concert = ConcertFactory(
        title="The Golden Hour: Under the Orange Sun — Encore Tour",
        artist="Kim Seo-yeon and the Seoul Philharmonic Orchestra",
    )
    schedule = ScheduleFactory(concert=concert)
    seats = seats_of(schedule, "VIP", "FLOOR-A", rows=2, per_row=3, price=165_000)
    emails = [
        "kim.seoyeon.1987.concerts@company-example.co.kr",
        "park.jiwoo@example.com",
        "lee.minho.tickets@university.example.ac.kr",
    ]
    buyers = [UserFactory(email=email) for email in emails]
    for buyer, seat in zip(buyers, seats, strict=False):
        buy(schedule, seat, buyer=buyer)
    buy(schedule, *seats[3:5])
    hold(schedule, seats[5])
    join(
        schedule,
        quantity=2,
        grades=["VIP"],
        user=UserFactory(email="choi.yuna.waiting@example.com"),
    )
    join(schedule, quantity=1)
    from payments.cancellations import payment_refund
    from payments.models import Payment

    operator = UserFactory(is_staff=True, is_superuser=True)
    payment_refund(
        payment_id=Payment.objects.order_by("id").first().id,
        operator=operator,
        in_full=False,
        reason="Asked.",
    )
    return schedule


def measure(html: str, tmp_path: Path, name: str) -> dict:
    page = tmp_path / f"{name}.html"
    html = html.replace('"/static/', f'"{ADMIN_STATIC.as_uri()}/')
    page.write_text(html.replace("</body>", MEASURE + "</body>"))
    shown = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--allow-file-access-from-files",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            "--virtual-time-budget=3000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    found = re.search(r"<title>MEASURED (.*?)</title>", shown)
    assert found, f"Chromium did not measure {name}: {shown[:500]}"
    return json.loads(found.group(1).replace("&quot;", '"'))


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian package chromium)")
def test_wide_lists_fit_a_1400_pixel_window(operator_client, busy_sale, tmp_path):
    too_wide = {}
    for path in WIDE_LISTS:
        response = operator_client.get(path)
        assert response.status_code == 200
        assert "results" in response.content.decode()
        size = measure(response.content.decode(), tmp_path, path.strip("/").replace("/", "-"))
        assert size["window"] == WINDOW[0] and size["sidebar"], size
        if size["table"] > size["box"] or size["page"] > size["window"]:
            too_wide[path] = size

    assert too_wide == {}, json.dumps(too_wide, indent=1)


def test_view_site_leads_to_the_api_docs(operator_client, client):
    index = operator_client.get("/admin/").content.decode()

    assert 'href="/api/docs/"' in index
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and docs["Content-Type"].startswith("text/html")


def test_times_in_admin_are_seoul_times(operator_client, busy_sale):
    reservation = busy_sale.reservations.filter(status="held", source="queue").get()

    listing = operator_client.get("/admin/reservations/reservation/").content.decode()

    assert f"{timezone.localtime(reservation.expires_at):%Y-%m-%d %H:%M}" in listing
    assert timezone.get_current_timezone_name() == "Asia/Seoul"
