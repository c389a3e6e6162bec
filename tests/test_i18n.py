"""Korean by default, English on request: API messages follow Accept-Language, `code`s never
change, and the Korean catalog is complete, consistent and compiled."""

import ast
import gettext
import re
from pathlib import Path

import pytest
from django.test import override_settings

from tests.test_settings import load_settings

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[1]
PO = ROOT / "locale" / "ko" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
PLACEHOLDER = re.compile(r"%\(\w+\)s|\{\w+(?::[^}]*)?\}")


def catalog() -> dict[str, str]:
    """msgid -> msgstr of the Korean .po (the header left out)."""
    entries, key, current = {}, None, None
    for line in PO.read_text(encoding="utf-8").splitlines() + [""]:
        if line.startswith("msgid "):
            key, current = "msgid", [line[6:]]
        elif line.startswith("msgstr "):
            msgid, key, current = (
                "".join(ast.literal_eval(p) for p in current),
                "msgstr",
                [line[7:]],
            )
        elif line.startswith('"') and current is not None:
            current.append(line)
        elif key == "msgstr":
            if msgid:
                entries[msgid] = "".join(ast.literal_eval(p) for p in current)
            key, current = None, None
    return entries


def test_korean_is_the_default_language_of_the_product():
    shown = load_settings(LANGUAGE_CODE="")  # unset: the default applies
    assert shown.returncode == 0
    import subprocess
    import sys

    default = subprocess.run(
        [sys.executable, "-c", "import config.settings as s; print(s.LANGUAGE_CODE)"],
        cwd=ROOT,
        env={k: v for k, v in __import__("os").environ.items() if k != "LANGUAGE_CODE"},
        capture_output=True,
        text=True,
    )
    assert default.stdout.strip() == "ko", default.stderr


@override_settings(LANGUAGE_CODE="ko")
def test_api_errors_answer_in_korean_by_default_and_in_english_on_request(customer_client):
    korean = customer_client.get("/api/v1/reservations/999999")
    english = customer_client.get("/api/v1/reservations/999999", HTTP_ACCEPT_LANGUAGE="en")
    korean_kr = customer_client.get("/api/v1/reservations/999999", HTTP_ACCEPT_LANGUAGE="ko-KR")

    assert korean.json()["error"] == {
        "code": "not_found",
        "message": "예매를 찾을 수 없습니다.",
        "details": {},
        "request_id": korean["X-Request-ID"],
    }
    assert korean_kr.json()["error"]["message"] == "예매를 찾을 수 없습니다."
    assert english.json()["error"]["message"] == "Reservation not found."
    assert english.json()["error"]["code"] == korean.json()["error"]["code"]
    assert korean["Content-Language"] == "ko" and english["Content-Language"] == "en"


@override_settings(LANGUAGE_CODE="ko")
def test_validation_messages_of_drf_and_ours_are_korean_too(customer_client):
    response = customer_client.post(
        "/api/v1/reservations", {"seat_ids": []}, format="json", HTTP_ACCEPT_LANGUAGE="ko"
    )
    details = response.json()["error"]["details"]

    assert response.status_code == 400
    assert details["schedule_id"] == ["필수 항목입니다."]
    assert details["seat_ids"] == ["항목이 1개 이상이어야 합니다."]
    assert (
        response.json()["error"]["message"]
        == "요청에 올바르지 않은 항목이 있습니다. details를 확인하세요."
    )


@override_settings(LANGUAGE_CODE="ko")
def test_messages_with_numbers_are_translated_whole(customer_client):
    page = customer_client.get("/api/v1/reservations", {"page": 99})

    assert page.status_code == 404
    assert page.json()["error"]["message"] == "99 페이지는 없습니다."


def test_every_message_has_a_korean_translation_with_the_same_placeholders():
    entries = catalog()

    assert len(entries) > 100
    untranslated = [msgid for msgid, msgstr in entries.items() if not msgstr]
    assert untranslated == []
    mismatched = [
        msgid
        for msgid, msgstr in entries.items()
        if sorted(PLACEHOLDER.findall(msgid)) != sorted(PLACEHOLDER.findall(msgstr))
    ]
    assert mismatched == []


def test_the_compiled_catalog_matches_its_source():
    compiled = gettext.GNUTranslations(MO.open("rb"))

    stale = [msgid for msgid, msgstr in catalog().items() if compiled.gettext(msgid) != msgstr]
    assert stale == [], "run msgfmt (bin/test does when gettext is installed)"


def test_the_catalog_has_every_string_marked_in_the_code():
    """A string wrapped for translation but missing from the .po would stay English."""
    marked = set()
    call = re.compile(
        r"""\b(?:_|gettext_noop|gettext_lazy|gettext|pgettext)\(\s*((?:"(?:[^"\\]|\\.)*"\s*)+)\)"""
    )
    for app in (
        "accounts",
        "concerts",
        "config",
        "payments",
        "queueing",
        "reservations",
        "console",
    ):
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for match in call.finditer(path.read_text(encoding="utf-8")):
                marked.add(
                    "".join(
                        ast.literal_eval(part)
                        for part in re.findall(r'"(?:[^"\\]|\\.)*"', match.group(1))
                    )
                )

    missing = sorted(marked - set(catalog()))
    assert missing == [], "run makemessages -l ko and translate"


@override_settings(LANGUAGE_CODE="ko")
def test_operators_read_the_admin_and_the_console_in_korean(operator_client):
    from tests.concerts.factories import ScheduleFactory

    schedule = ScheduleFactory()
    waitlist = operator_client.get("/admin/reservations/waitlistentry/", HTTP_ACCEPT_LANGUAGE="ko")
    concert = operator_client.get(
        f"/admin/concerts/concert/{schedule.concert_id}/change/", HTTP_ACCEPT_LANGUAGE="ko"
    )
    dashboard = operator_client.get(
        f"/admin/console/concerts/{schedule.concert_id}/dashboard/", HTTP_ACCEPT_LANGUAGE="ko"
    )

    assert "취소표 대기" in waitlist.content.decode()
    assert "동시 예매 인원" in concert.content.decode()  # a field's label
    assert "판매 현황" in dashboard.content.decode()
