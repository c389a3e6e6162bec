from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from concerts.models import Concert, Schedule
from concerts.services import SeatBlock, seat_map_generate
from config.money import format_won
from payments.models import LedgerEntry
from payments.services import wallet_charge, wallet_for_user

DEMO_CUSTOMER = ("demo@example.com", "demo-customer-pass")
DEMO_OPERATOR = ("operator@example.com", "demo-operator-pass")
DEMO_WALLET_WON = 1_000_000

# Three sections of 5 rows x 10 seats: 150 seats a performance, three price grades.
DEMO_BLOCKS = [
    SeatBlock(section="A", grade="VIP", price=165_000, rows=2, seats_per_row=10),
    SeatBlock(section="A", grade="R", price=132_000, rows=3, seats_per_row=10, first_row=3),
    SeatBlock(section="B", grade="R", price=132_000, rows=5, seats_per_row=10),
    SeatBlock(section="C", grade="S", price=99_000, rows=5, seats_per_row=10),
]

DEMO_CONCERTS = [
    ("Blue Hour World Tour", "NOVA", "KSPO Dome, Seoul", 3),
    ("Autumn Strings", "Seoul Chamber Ensemble", "Lotte Concert Hall, Seoul", 2),
    ("Neon Harbor Live", "The Tidewalkers", "BEXCO Auditorium, Busan", 2),
]


class Command(BaseCommand):
    # In payments, the top of the app layers (docs/architecture.md): it uses every app.
    help = "Create the demo data set (concerts, seat maps, a customer, an operator) if absent."

    def handle(self, *args, **options):
        User = get_user_model()
        customer_email, customer_password = DEMO_CUSTOMER
        operator_email, operator_password = DEMO_OPERATOR
        with transaction.atomic():
            customer = User.objects.filter(email=customer_email).first()
            if customer is None:
                customer = User.objects.create_user(
                    email=customer_email, password=customer_password, name="Demo Customer"
                )
            if not User.objects.filter(email=operator_email).exists():
                User.objects.create_superuser(
                    email=operator_email, password=operator_password, name="Demo Operator"
                )
            token, _ = Token.objects.get_or_create(user=customer)
            if not LedgerEntry.objects.filter(wallet__user=customer).exists():
                wallet_charge(user=customer, amount=DEMO_WALLET_WON)

            if not Concert.objects.exists():
                self._create_concerts()

        self.stdout.write(
            "Demo logins:\n"
            f"  operator (admin):  {operator_email} / {operator_password}\n"
            f"  customer (API):    {customer_email} / {customer_password}"
            f" (wallet: {format_won(wallet_for_user(user=customer).balance)})\n"
            f"  customer token:    Authorization: Bearer {token.key}"
        )

    def _create_concerts(self) -> None:
        today = timezone.localtime().replace(hour=19, minute=0, second=0, microsecond=0)
        schedule_ids = []
        for index, (title, artist, venue, dates) in enumerate(DEMO_CONCERTS):
            concert = Concert.objects.create(
                title=title,
                artist=artist,
                venue=venue,
                description=f"{artist} live at {venue}.",
                is_published=True,
                sale_opens_at=today - timedelta(days=1),
            )
            first_night = today + timedelta(days=14 + 7 * index)
            for night in range(dates):
                starts_at = first_night + timedelta(days=night)
                schedule = Schedule.objects.create(
                    concert=concert,
                    starts_at=starts_at,
                    ends_at=starts_at + timedelta(hours=2, minutes=30),
                )
                schedule_ids.append(schedule.id)
        seat_map_generate(schedule_ids=schedule_ids, blocks=DEMO_BLOCKS)
