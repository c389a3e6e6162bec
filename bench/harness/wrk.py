"""wrk, the load generator, and the files its Lua scripts read.

Reads: `wrk/cycle.lua` cycles through a file of customers for a fixed time, each wrk thread its
own slice. Writes: `wrk/list.lua` sends a prepared list of requests exactly once and stops when
the last answer is in (wrk's -d is then only a cap). Both print `BENCH ...` lines at the end.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from bench.harness import BENCH, ROOT

CYCLE_LUA = BENCH / "wrk" / "cycle.lua"
LIST_LUA = BENCH / "wrk" / "list.lua"


def require_wrk() -> bool:
    if shutil.which("wrk") is None:
        print("wrk is not installed. On Debian/Ubuntu: apt-get install -y wrk (bin/bench does)")
        return False
    return True


def run_wrk(
    url: str, script: Path, script_args: list, *, threads: int, connections: int, seconds: int
) -> tuple[list[str], str]:
    """wrk with a Lua script (`script_args` go after `--`); returns the command and stdout."""
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script.relative_to(ROOT)),
        url,
        "--",
        *map(str, script_args),
    ]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    return command, proc.stdout


def write_customers(path: Path, method: str, url_path: str, customers) -> Path:
    """A file for wrk/cycle.lua: METHOD, PATH, then each customer's bearer token (and queue
    token), tab-separated, a customer a line."""
    path.write_text("".join("\t".join((method, url_path, *c)) + "\n" for c in customers))
    return path


def write_requests(path: Path, requests) -> Path:
    """A list for wrk/list.lua from (method, path, JSON body or None, {header: value})."""
    with path.open("w") as f:
        for method, url_path, body, headers in requests:
            fields = [
                method,
                url_path,
                "-" if body is None else json.dumps(body, separators=(",", ":")),
            ]
            fields += [f"{name}: {value}" for name, value in headers.items()]
            f.write("\t".join(fields) + "\n")
    return path


def _duration_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000}[unit]


def parse_wrk(out: str) -> dict:
    """wrk's own report and what wrk/cycle.lua adds (answers by status, wraps, p99.9, max)."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    total = re.search(r"^\s*(\d+) requests in ([\d.]+\w+),", out, re.M)
    percentiles = {p: _duration_ms(v) for p, v in re.findall(r"^\s+(\d+)%\s+(\S+)$", out, re.M)}
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    statuses = {int(c): int(n) for c, n in re.findall(r"^BENCH status (\d+) (\d+)$", out, re.M)}
    sockets = re.search(r"^BENCH socket_errors (\d+) (\d+) (\d+) (\d+)$", out, re.M)
    extra = dict(re.findall(r"^BENCH (wraps|p999_us|max_us) (\d+)$", out, re.M))
    return {
        "requests_per_s": float(rps.group(1)) if rps else None,
        "requests": int(total.group(1)) if total else 0,
        "p50_ms": percentiles.get("50"),
        "p90_ms": percentiles.get("90"),
        "p99_ms": percentiles.get("99"),
        "p99_9_ms": int(extra["p999_us"]) / 1000 if "p999_us" in extra else None,
        "max_ms": int(extra["max_us"]) / 1000 if "max_us" in extra else None,
        "non_2xx_3xx": int(non_2xx.group(1)) if non_2xx else 0,
        "statuses": dict(sorted(statuses.items())),
        "socket_errors": dict(
            zip(("connect", "read", "write", "timeout"), map(int, sockets.groups()), strict=True)
        )
        if sockets
        else None,
        "wraps": int(extra.get("wraps", 0)),
    }


def parse_list(out: str) -> dict:
    """parse_wrk, plus what wrk/list.lua reports: lines sent and answered, answers by status
    and error code ("409 seats_unavailable"), and req/s over the run's real length."""
    result = parse_wrk(out)
    result["wrk_requests_per_s"] = result["requests_per_s"]
    values = dict(re.findall(r"^BENCH (\w+) (\d+)$", out, re.M))
    codes = {
        k.replace("/", " "): int(n) for k, n in re.findall(r"^BENCH code (\S+) (\d+)$", out, re.M)
    }
    received = int(values.get("received", 0))
    seconds = (int(values.get("last_us", 0)) - int(values.get("first_us", 0))) / 1e6
    result.update(
        {
            "lines": int(values.get("lines", 0)),
            "sent": int(values.get("sent", 0)),
            "received": received,
            "fillers": int(values.get("fillers", 0)),
            "seconds": round(seconds, 2),
            # first request sent to last answer received: wrk's own req/s divides by -d when
            # the cap cuts a run, and by a little more than this otherwise
            "requests_per_s": round(received / seconds, 1) if seconds > 0 else None,
            "statuses": dict(sorted(codes.items())),
        }
    )
    return result
