import re
import traceback
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings
from rest_framework.test import APIClient

from tests.accounts.factories import UserFactory

RUN_PREFIX = f"test-{uuid.uuid4().hex[:8]}"


def pytest_sessionstart(session):
    """Fail at once, saying how to start them, when MariaDB or Redis is not there."""
    import MySQLdb
    import redis

    database = settings.DATABASES["default"]
    problems = []
    if database["ENGINE"] == "django.db.backends.mysql":
        try:
            MySQLdb.connect(
                host=database["HOST"] or "127.0.0.1",
                port=int(database["PORT"] or 3306),
                user=database["USER"],
                password=database["PASSWORD"] or "",
                connect_timeout=3,
            ).close()
        except MySQLdb.Error as error:
            problems.append(
                f"MariaDB at {database['HOST']}:{database['PORT']} is unreachable ({error}).\n"
                "  Start it: start-stop-daemon --start --oknodo --background "
                "--exec /usr/sbin/mariadbd\n  or point TEST_DATABASE_URL at a MySQL/MariaDB."
            )
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        problems.append(
            f"Redis at {settings.REDIS_URL} is unreachable ({error}).\n"
            '  Start it: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" '
            "--appendonly no\n  or point TEST_REDIS_URL at a Redis."
        )
    if problems:
        pytest.exit("\n".join(problems), returncode=2)


def pytest_sessionfinish(session):
    """Delete every Redis key this run wrote, and nothing else."""
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3)
        for key in client.scan_iter(match=f"{RUN_PREFIX}*", count=1000):
            client.delete(key)
    except redis.RedisError:
        pass


@pytest.fixture(autouse=True)
def isolated_redis():
    """Each test gets its own Redis key prefix: no test sees another's cache or queue keys,
    and nobody else's keys are ever flushed."""
    prefix = f"{RUN_PREFIX}-{uuid.uuid4().hex[:8]}"
    caches = {name: {**config, "KEY_PREFIX": prefix} for name, config in settings.CACHES.items()}
    with override_settings(CACHES=caches, REDIS_KEY_PREFIX=prefix):
        yield prefix


@pytest.fixture(autouse=True)
def redis_circuits_closed():
    """Each test starts with every Redis circuit breaker closed (config/redis.py)."""
    from config.redis import breakers_reset

    breakers_reset()
    yield
    breakers_reset()


@pytest.fixture(autouse=True)
def fresh_local_caches():
    """Per-process caches (config.localcache) start empty in every test."""
    from config.localcache import LocalCache

    LocalCache.clear_all()
    yield
    LocalCache.clear_all()


# An UPDATE of a seat's sale state: the SET part names status, reservation_id or
# hold_expires_at (quoted the MySQL or the SQLite way).
_SEAT_STATE_UPDATE = re.compile(
    r"^UPDATE [`\"]concerts_seat[`\"] SET (?:(?! WHERE ).)*[`\"]"
    r"(?:status|reservation_id|hold_expires_at)[`\"] =",
    re.DOTALL,
)
_INVENTORY = str(Path(__file__).resolve().parents[1] / "reservations" / "inventory.py")
_TESTS = str(Path(__file__).resolve().parent)


@pytest.fixture(autouse=True)
def seat_state_changes_only_through_the_inventory():
    """Throughout the suite: every UPDATE of a seat's sale state comes from
    reservations/inventory.py (or a test arranging its data), never from another module."""
    from django.db import connection

    def check(execute, sql, params, many, context):
        if _SEAT_STATE_UPDATE.match(sql):
            writer = _innermost_project_frame()
            assert writer == _INVENTORY or writer.startswith(_TESTS), (
                f"A seat's sale state written by {writer}, not reservations/inventory.py:\n{sql}"
            )
        return execute(sql, params, many, context)

    with connection.execute_wrapper(check):
        yield


def _innermost_project_frame() -> str:
    """The file of our code (not Django's, not this fixture's) nearest the current call."""
    for frame in reversed(traceback.extract_stack()):
        if "site-packages" not in frame.filename and frame.filename != __file__:
            return frame.filename
    return ""


@pytest.fixture
def operator(db):
    from tests.accounts.factories import OperatorFactory

    return OperatorFactory()


@pytest.fixture
def operator_client(operator):
    """Django's test client, logged in to admin as an operator."""
    from django.test import Client

    client = Client()
    client.force_login(operator)
    return client


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def customer(db):
    return UserFactory()


def client_for(user) -> APIClient:
    from rest_framework.authtoken.models import Token

    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    return client


@pytest.fixture
def customer_client(customer) -> APIClient:
    return client_for(customer)


def admitted_queue_token(*, user, concert) -> str:
    """Enter the concert's queue and run one admission tick: the customer is let in."""
    from queueing.services import queue_admit_tick, queue_enter

    entry = queue_enter(concert_id=concert.id, user_id=user.id)
    queue_admit_tick(concert=concert)
    return entry.token


@pytest.fixture
def admit(customer, customer_client):
    """admit(concert) -> the customer's client, sending an admitted X-Queue-Token."""

    def admit_to(concert) -> APIClient:
        token = admitted_queue_token(user=customer, concert=concert)
        customer_client.credentials(
            HTTP_AUTHORIZATION=customer_client._credentials["HTTP_AUTHORIZATION"],
            HTTP_X_QUEUE_TOKEN=token,
        )
        return customer_client

    return admit_to


@pytest.fixture
def staff_client(db):
    """staff_client("Sales staff") -> (Django's test client, the user): a staff member (not
    a superuser) in that operator group (accounts/operator_groups.py)."""
    from django.contrib.auth.models import Group
    from django.test import Client

    from accounts.operator_groups import operator_groups_sync

    def log_in(group: str):
        operator_groups_sync()  # the migration made them; a flushed database lost them
        user = UserFactory(is_staff=True)
        user.groups.add(Group.objects.get(name=group))
        client = Client()
        client.force_login(user)
        return client, user

    return log_in
