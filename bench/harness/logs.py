"""What the gunicorn and Celery logs say happened during a row.

The production log level (config/settings.py LOGGING) is INFO, with django.request at ERROR:
4xx answers (a taken seat is a 409) write nothing, a 5xx writes an ERROR line and its
traceback. gunicorn's access log is off (ACCESS_LOG=""). So the lines counted here are
trouble, or gunicorn recycling its workers.
"""

from __future__ import annotations

import re
from pathlib import Path

# gunicorn "[ERROR]", Django "... ERROR name: ...", Celery "[...: ERROR/MainProcess]"
ERROR_LINE = re.compile(r"[\s\[]ERROR[\s\]/:]")
LOCK_CONFLICT = re.compile(r"Deadlock found|Lock wait timeout|\(1213|\(1205")
EVENTS = {
    "tracebacks": "Traceback",
    "error_lines": ERROR_LINE,
    "lock_conflicts": LOCK_CONFLICT,
    "worker_timeouts": "WORKER TIMEOUT",
    "worker_boots": "Booting worker",
    "worker_recycles": "Autorestarting worker",
}


def log_offset(path: Path | None) -> int:
    return path.stat().st_size if path and path.exists() else 0


def read_since(path: Path, offset: int) -> str:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def count_events(text: str, names=tuple(EVENTS)) -> dict[str, int]:
    """Lines of each kind in `names` (all of EVENTS by default)."""
    lines = text.splitlines()
    counts = {}
    for name in names:
        pattern = EVENTS[name]
        if isinstance(pattern, str):
            counts[name] = sum(pattern in line for line in lines)
        else:
            counts[name] = sum(bool(pattern.search(line)) for line in lines)
    return counts


def warnings_by_message(text: str, top: int = 5) -> dict[str, int]:
    """WARNING lines, numbers blanked so that alike messages group, most frequent first."""
    warnings: dict[str, int] = {}
    for line in text.splitlines():
        found = re.search(r" WARNING (\S+: .*)$", line)
        if found:
            message = re.sub(r"\d+", "N", found.group(1))
            warnings[message] = warnings.get(message, 0) + 1
    return dict(sorted(warnings.items(), key=lambda kv: -kv[1])[:top])


def error_samples(text: str, first: int = 5) -> list[str]:
    """The first few lines that say something went wrong, to quote in the report."""
    bad = [
        line
        for line in text.splitlines()
        if ERROR_LINE.search(line)
        or "CRITICAL" in line
        or "Traceback" in line
        or LOCK_CONFLICT.search(line)
    ]
    return bad[:first]
