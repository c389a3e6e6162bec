"""py-spy over the gunicorn workers during a row (--profile), and where their request
handling spent its samples: by activity (database, Redis, ORM, rendering, ...) and by
function. py-spy takes CPU of its own, so a profiled row runs ~10 % slower.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

from bench.harness import VENV, log

# Each sample goes to the first activity whose marker is anywhere in its stack.
ACTIVITIES = [
    ("is_usable", "MySQL ping before the first query (CONN_HEALTH_CHECKS)"),
    ("MySQLdb/", "MySQL queries (driver + round trip)"),
    ("redis/", "Redis (client + round trip)"),
    ("django/db/", "Django ORM (building queries, rows to objects)"),
    ("rest_framework/renderers", "JSON rendering"),
    ("rest_framework/serializers", "DRF serializers"),
    ("rest_framework/fields", "DRF serializers"),
    ("hmac", "queue token MAC (hmac/hashlib)"),
]


class Profiler:
    """py-spy attached to a gunicorn master and its workers from `with` to its end; then
    `summary` (None without py-spy, or when it recorded nothing)."""

    def __init__(self, gunicorn_pid: int, raw: Path):
        self.gunicorn_pid, self.raw = gunicorn_pid, raw
        self.summary: dict | None = None
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Profiler:
        py_spy = VENV / "py-spy"
        if not py_spy.exists():
            log("no .venv/bin/py-spy: no profile (the bench extra installs it)")
            return self
        self.raw.unlink(missing_ok=True)  # (a file of an earlier row is not this one's)
        command = [str(py_spy), "record", "--pid", str(self.gunicorn_pid), "--subprocesses"]
        command += ["--nonblocking", "--format", "raw", "--rate", "200", "-o", str(self.raw)]
        self.proc = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        time.sleep(1)  # attached to every worker before the load starts
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
        _, err = self.proc.communicate(timeout=60)
        if self.raw.exists():
            self.summary = summarize_profile(self.raw.read_text())
        else:
            log(f"py-spy recorded nothing: {err.strip()[-500:]}")


def summarize_profile(raw: str, top: int = 12) -> dict:
    """py-spy's raw format (a `frame;frame;...;leaf count` line per distinct stack), of request
    handling only: not the gunicorn master's loop or an idle worker waiting for a request."""
    by_function: dict[str, int] = {}
    by_activity: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not any("handle_request" in frame for frame in frames):
            continue
        samples = int(count)
        total += samples
        leaf = re.sub(r":\d+\)$", ")", frames[-1])
        by_function[leaf] = by_function.get(leaf, 0) + samples
        activity = _activity(frames)
        by_activity[activity] = by_activity.get(activity, 0) + samples

    def ranked(counts: dict[str, int]) -> list[dict]:
        return [
            {"frame": name, "pct": round(100 * n / max(1, total), 1)}
            for name, n in sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        ]

    return {"samples": total, "activities": ranked(by_activity), "top_self": ranked(by_function)}


def _activity(frames: list[str]) -> str:
    for marker, name in ACTIVITIES:
        if any(marker in frame for frame in frames):
            return name
    path = re.search(r"\((.+?):\d+\)$", frames[-1])
    module = path.group(1) if path else frames[-1]
    package = module.split("site-packages/")[-1].split("/")[0].removesuffix(".py")
    return f"other, in {package}"
