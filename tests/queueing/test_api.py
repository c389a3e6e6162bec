from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from queueing.services import queue_admit_tick
from tests.accounts.factories import UserFactory
from tests.concerts.factories import ConcertFactory, ScheduleFactory, SeatFactory
from tests.conftest import admitted_queue_token, client_for

pytestmark = pytest.mark.django_db


def error(response) -> dict:
    return response.json()["error"]


def enter(client, concert_id):
    return client.post(f"/api/v1/concerts/{concert_id}/queue")


def test_entering_twice_returns_the_same_entry(customer_client):
    concert = ConcertFactory()

    first = enter(customer_client, concert.id)
    second = enter(customer_client, concert.id)

    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["token"] == second.json()["token"]
    assert first.json() | {"poll_after_seconds": None} == {
        "token": first.json()["token"],
        "concert_id": concert.id,
        "status": "waiting",
        "position": 1,
        "ahead": 0,
        "eta_seconds": 1,
        "admitted_until": None,
        "sale_opens_at": timezone.localtime(concert.sale_opens_at).isoformat(),
        "ended_reason": None,
        "poll_after_seconds": None,
    }


def test_status_follows_the_entry_from_waiting_to_admitted_to_done(customer_client):
    concert = ConcertFactory()
    token = enter(customer_client, concert.id).json()["token"]
    customer_client.credentials(
        HTTP_AUTHORIZATION=customer_client._credentials["HTTP_AUTHORIZATION"],
        HTTP_X_QUEUE_TOKEN=token,
    )
    assert customer_client.get("/api/v1/queue").json()["status"] == "waiting"

    queue_admit_tick(concert=concert)
    admitted = customer_client.get("/api/v1/queue").json()
    assert admitted["status"] == "admitted"
    assert admitted["admitted_until"].endswith("+09:00")

    assert customer_client.delete("/api/v1/queue").status_code == 204
    assert customer_client.get("/api/v1/queue").json()["status"] == "done"
    assert customer_client.delete("/api/v1/queue").status_code == 204  # harmless twice


def test_position_and_ahead_count_the_line(customer_client):
    concert = ConcertFactory()
    for _ in range(3):
        enter(client_for(UserFactory()), concert.id)

    body = enter(customer_client, concert.id).json()

    assert (body["position"], body["ahead"]) == (4, 3)


def test_before_opening_nobody_is_shown_a_position(customer_client):
    concert = ConcertFactory(sale_opens_at=timezone.now() + timedelta(hours=2))

    body = enter(customer_client, concert.id).json()

    assert (body["status"], body["position"], body["eta_seconds"]) == ("waiting", None, None)


@pytest.mark.parametrize(
    "concert_kwargs, status, code",
    [
        ({"is_published": False}, 404, "not_found"),
        ({"sale_opens_at": None}, 409, "queue_closed"),
    ],
)
def test_entering_a_concert_not_on_sale(customer_client, concert_kwargs, status, code):
    concert = ConcertFactory(**concert_kwargs)

    response = enter(customer_client, concert.id)

    assert response.status_code == status
    assert error(response)["code"] == code


def test_entering_an_unknown_concert_is_not_found(customer_client):
    assert enter(customer_client, 987654).status_code == 404


def test_the_queue_needs_authentication(api_client):
    concert = ConcertFactory()

    assert error(enter(api_client, concert.id))["code"] == "not_authenticated"
    assert error(api_client.get("/api/v1/queue"))["code"] == "not_authenticated"


@pytest.mark.parametrize(
    "token", [None, "", "garbage", "1.2.3", "1.abcdef.0000000000000000000000000000000", "x" * 500]
)
def test_status_with_a_missing_or_forged_token_is_refused(customer_client, token):
    headers = {} if token is None else {"HTTP_X_QUEUE_TOKEN": token}

    response = customer_client.get("/api/v1/queue", **headers)

    assert response.status_code == 403
    assert error(response)["code"] == "queue_token_invalid"
    assert error(response)["details"]["reason"] in ("missing", "malformed")


def test_a_token_answers_a_poll_as_its_own_customer_and_nothing_else(customer_client):
    """The queue token is its customer's credential for the poll (it names them and is signed
    for them): whoever sends it sees that customer's place, never their own. Leaving and the
    gated calls take the Bearer token's customer, and refuse a token that is not theirs."""
    concert = ConcertFactory()
    token = enter(customer_client, concert.id).json()["token"]
    someone_else = client_for(UserFactory())
    enter(someone_else, concert.id)  # second in line

    polled = someone_else.get("/api/v1/queue", HTTP_X_QUEUE_TOKEN=token)
    leave = someone_else.delete("/api/v1/queue", HTTP_X_QUEUE_TOKEN=token)

    assert (polled.status_code, polled.json()["position"]) == (200, 1)
    assert (leave.status_code, error(leave)["code"]) == (403, "queue_token_invalid")
    assert error(leave)["details"] == {"reason": "not_yours"}
    assert (
        customer_client.get("/api/v1/queue", HTTP_X_QUEUE_TOKEN=token).json()["status"] == "waiting"
    )


def test_a_poll_needs_no_bearer_token_and_no_database_query(
    customer_client, api_client, django_assert_num_queries
):
    concert = ConcertFactory()
    token = enter(customer_client, concert.id).json()["token"]  # the concert is now cached

    with django_assert_num_queries(0):
        polled = api_client.get("/api/v1/queue", HTTP_X_QUEUE_TOKEN=token)
    left = api_client.delete("/api/v1/queue", HTTP_X_QUEUE_TOKEN=token)

    assert (polled.status_code, polled.json()["position"]) == (200, 1)
    assert (left.status_code, error(left)["code"]) == (401, "not_authenticated")
    assert left["WWW-Authenticate"] == "Bearer"


def _earlier_format(token: str) -> str:
    """The same entry's token as issued before tokens named their customer."""
    concert, _user, nonce, order, mac = token.split(".")
    return f"{concert}.{nonce}.{order}.{mac}"


def test_a_token_of_the_earlier_format_still_works_with_the_bearer_token(
    customer_client, api_client
):
    concert = ConcertFactory()
    token = _earlier_format(enter(customer_client, concert.id).json()["token"])

    with_bearer = customer_client.get("/api/v1/queue", HTTP_X_QUEUE_TOKEN=token)
    without = api_client.get("/api/v1/queue", HTTP_X_QUEUE_TOKEN=token)
    someone_else = client_for(UserFactory()).get("/api/v1/queue", HTTP_X_QUEUE_TOKEN=token)

    assert (with_bearer.status_code, with_bearer.json()["position"]) == (200, 1)
    assert (without.status_code, error(without)["code"]) == (401, "not_authenticated")
    assert error(someone_else)["details"] == {"reason": "not_yours"}


def test_a_token_whose_customer_was_changed_is_refused(customer, customer_client, api_client):
    concert = ConcertFactory()
    token = enter(customer_client, concert.id).json()["token"]
    other = UserFactory()
    concert_id, _user, nonce, order, mac = token.split(".")
    forged = f"{concert_id}.{other.id}.{nonce}.{order}.{mac}"

    alone = api_client.get("/api/v1/queue", HTTP_X_QUEUE_TOKEN=forged)
    as_owner = customer_client.get("/api/v1/queue", HTTP_X_QUEUE_TOKEN=forged)
    as_other = client_for(other).get("/api/v1/queue", HTTP_X_QUEUE_TOKEN=forged)

    assert (alone.status_code, error(alone)["code"]) == (401, "not_authenticated")
    assert error(as_owner)["details"] == {"reason": "not_yours"}
    assert error(as_other)["details"] == {"reason": "not_yours"}


# Gating: the seat map needs an admitted token of the schedule's own concert.


@pytest.fixture
def schedule():
    schedule = ScheduleFactory()
    SeatFactory(schedule=schedule)
    return schedule


def seat_map(client, schedule, token=None):
    headers = {} if token is None else {"HTTP_X_QUEUE_TOKEN": token}
    return client.get(f"/api/v1/schedules/{schedule.id}/seats", **headers)


def test_an_admitted_customer_sees_the_seat_map(customer, customer_client, schedule):
    token = admitted_queue_token(user=customer, concert=schedule.concert)

    assert seat_map(customer_client, schedule, token).status_code == 200


@pytest.mark.parametrize("token", [None, "", "forged.token.value", "12.0123456789abcdef.nope"])
def test_seat_map_refuses_missing_or_forged_tokens(customer_client, schedule, token):
    response = seat_map(customer_client, schedule, token)

    assert (response.status_code, error(response)["code"]) == (403, "queue_token_invalid")


def test_seat_map_refuses_another_customers_token(customer_client, schedule):
    token = admitted_queue_token(user=UserFactory(), concert=schedule.concert)

    response = seat_map(customer_client, schedule, token)

    assert (response.status_code, error(response)["code"]) == (403, "queue_token_invalid")
    assert error(response)["details"] == {"reason": "not_yours"}


def test_seat_map_refuses_a_token_of_another_concert(customer, customer_client, schedule):
    token = admitted_queue_token(user=customer, concert=ConcertFactory())

    response = seat_map(customer_client, schedule, token)

    assert (response.status_code, error(response)["code"]) == (403, "queue_token_invalid")
    assert error(response)["details"] == {"reason": "other_concert"}
    assert error(response)["message"] == "This queue token is for another concert's queue."


def test_a_token_of_another_concert_is_refused_before_redis_is_asked(
    customer, customer_client, schedule, redis_down
):
    token = admitted_queue_token(user=customer, concert=ConcertFactory())
    seat_map(
        customer_client, schedule, admitted_queue_token(user=customer, concert=schedule.concert)
    )
    with redis_down():
        response = seat_map(customer_client, schedule, token)

    assert (response.status_code, error(response)["code"]) == (403, "queue_token_invalid")


def test_seat_map_tells_a_waiting_customer_where_they_stand(customer_client, schedule):
    schedule.concert.queue_max_active = 1
    schedule.concert.save()
    admitted_queue_token(user=UserFactory(), concert=schedule.concert)  # takes the only slot
    token = enter(customer_client, schedule.concert_id).json()["token"]
    queue_admit_tick(concert=schedule.concert)

    response = seat_map(customer_client, schedule, token)

    assert response.status_code == 403
    assert error(response)["code"] == "queue_not_admitted"
    # First in line, but the only slot's session must end first, and it has just begun: the
    # ETA's prior for a session it has not seen end is 70 % of the 10-minute session.
    details = error(response)["details"]
    assert details["position"] == 1 and 420 <= details["eta_seconds"] <= 425


def test_seat_map_refuses_an_entry_that_has_ended(customer, customer_client, schedule):
    token = admitted_queue_token(user=customer, concert=schedule.concert)
    customer_client.delete("/api/v1/queue", HTTP_X_QUEUE_TOKEN=token)

    response = seat_map(customer_client, schedule, token)

    assert (response.status_code, error(response)["code"]) == (410, "queue_token_expired")


def test_seat_map_refuses_an_admitted_session_that_ran_out(customer, customer_client, schedule):
    token = admitted_queue_token(user=customer, concert=schedule.concert)
    assert seat_map(customer_client, schedule, token).status_code == 200  # claims the slot
    queue_admit_tick(
        concert=schedule.concert,
        now=timezone.now() + timedelta(minutes=schedule.concert.queue_admitted_minutes, seconds=1),
    )

    response = seat_map(customer_client, schedule, token)

    assert (response.status_code, error(response)["code"]) == (410, "queue_token_expired")


def test_queue_calls_are_503_when_redis_is_down(customer_client, redis_down):
    concert = ConcertFactory()
    with redis_down():
        response = enter(customer_client, concert.id)

    assert response.status_code == 503
    assert error(response)["code"] == "service_unavailable"
    assert int(response["Retry-After"]) > 0


def test_polling_costs_no_query_once_the_concert_is_known(
    customer, customer_client, django_assert_num_queries
):
    concert = ConcertFactory()
    token = enter(customer_client, concert.id).json()["token"]  # the concert is now cached
    headers = {"HTTP_X_QUEUE_TOKEN": token}

    with django_assert_num_queries(0):  # the queue token, then the line: one Redis call
        polled = customer_client.get("/api/v1/queue", **headers)
    with django_assert_num_queries(1):  # entering again: the Bearer token only
        entered = enter(customer_client, concert.id)

    assert polled.json()["position"] == 1
    assert entered.status_code == 200


@override_settings(LOCAL_CACHE_SECONDS=60)
def test_a_paused_queue_shows_in_polls_within_the_local_cache_time(customer_client):
    from config.localcache import LocalCache
    from queueing.services import queue_set_paused

    concert = ConcertFactory()
    token = enter(customer_client, concert.id).json()["token"]
    queue_set_paused(concert_ids=[concert.id], paused=True)
    headers = {"HTTP_X_QUEUE_TOKEN": token}

    # Each process may reuse the settings for LOCAL_CACHE_SECONDS; then it reads them anew.
    assert customer_client.get("/api/v1/queue", **headers).json()["eta_seconds"] == 1
    LocalCache.clear_all()  # what the time limit does
    assert customer_client.get("/api/v1/queue", **headers).json()["eta_seconds"] is None


@override_settings(QUEUE_POLL_GATE=False)
def test_a_queue_paused_before_opening_tells_its_customers_to_come_back_at_opening(
    customer_client,
):
    """Paused before opening there is no ETA to space the polls by (the script once did
    arithmetic on the missing ETA: every poll failed)."""
    from queueing.services import queue_set_paused

    opens = timezone.now() + timedelta(hours=1)
    concert = ConcertFactory(sale_opens_at=opens)
    token = enter(customer_client, concert.id).json()["token"]
    queue_set_paused(concert_ids=[concert.id], paused=True)

    with override_settings(LOCAL_CACHE_SECONDS=0):
        polled = customer_client.get("/api/v1/queue", HTTP_X_QUEUE_TOKEN=token)

    assert polled.status_code == 200
    body = polled.json()
    assert (body["status"], body["position"], body["eta_seconds"]) == ("paused", None, None)
    assert body["poll_after_seconds"] >= 1


def test_an_admitted_customer_entering_again_gets_the_admitted_entry_back(
    customer, customer_client
):
    concert = ConcertFactory()
    token = admitted_queue_token(user=customer, concert=concert)

    again = enter(customer_client, concert.id)

    assert again.status_code == 200
    body = again.json()
    assert (body["token"], body["status"], body["position"]) == (token, "admitted", None)
    assert body["admitted_until"] is not None


def test_a_token_with_non_ascii_digits_is_refused_not_a_crash(customer_client):
    response = customer_client.get(
        "/api/v1/queue", HTTP_X_QUEUE_TOKEN="\xb2.0123456789abcdef." + "0" * 32
    )

    assert (response.status_code, response.json()["error"]["code"]) == (403, "queue_token_invalid")


def test_another_customers_token_is_refused_before_redis_is_asked(customer_client, redis_down):
    """The token's MAC binds it to its customer: another customer's token is refused by the
    web process alone (leaving, the gated calls), so even with Redis unreachable the answer
    is 'invalid', not 503."""
    concert = ConcertFactory()
    token = enter(customer_client, concert.id).json()["token"]
    thief = client_for(UserFactory())
    with redis_down():
        response = thief.delete("/api/v1/queue", HTTP_X_QUEUE_TOKEN=token)

    assert (response.status_code, error(response)["code"]) == (403, "queue_token_invalid")
