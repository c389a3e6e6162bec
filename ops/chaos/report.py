"""Each phase in numbers (what the customers saw, what the queue and the database say), the
must-hold checks of the issue, and the table.

A must-hold check is {"check", "value", "expected", "ok"}; the run exits 1 when one fails.
"""

from __future__ import annotations

import functools
import json
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .client import Answer, Recorder
from .faults import Fault
from .watch import LineSnapshot, QueueWatch, places_kept

MAIN_KINDS = ("enter", "poll", "seat map", "hold", "pay", "charge")
QUEUE_KINDS = ("enter", "poll", "seat map", "hold")  # answer 503 while Redis cannot
QUEUE_503_LIMIT_S = 1.5
MONEY_P50_LIMIT = 2.0  # x the no-fault phase's p50, with Redis frozen
RETRY_ANSWER_LIMIT_S = 3.0  # from a killed worker's 503 to the retry's definite answer
RETRY_WINDOW_S = 5.0  # a retry this long after the fault still counts as one of its


@dataclass
class PhaseRun:
    """One phase as it ran: its window on the run's clock, the fault (none for the
    baseline), the lines before and after, the database check at its end, the logs."""

    name: str
    title: str
    started: float
    ended: float = 0.0
    fault: Fault | None = None
    lines_before: dict[int, LineSnapshot] = field(default_factory=dict)
    lines_after: dict[int, LineSnapshot] = field(default_factory=dict)
    database: dict = field(default_factory=dict)
    logs: dict = field(default_factory=dict)


def must(name: str, value, ok: bool, expected) -> dict:
    return {"check": name, "value": value, "expected": expected, "ok": bool(ok)}


def percentile_ms(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0] * 1000, 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000, 1)


def answer_key(answer: Answer) -> str:
    if answer.status == 0:
        return "no answer"
    key = f"{answer.status} {answer.code}" if answer.code else str(answer.status)
    return f"{key} (nginx)" if answer.from_proxy and answer.status >= 500 else key


def by_kind(answers: list[Answer]) -> dict:
    kinds: dict[str, list[Answer]] = {}
    for answer in answers:
        kinds.setdefault(answer.kind, []).append(answer)
    return {
        kind: {
            "requests": len(group),
            "p50_ms": percentile_ms([a.seconds for a in group], 50),
            "p99_ms": percentile_ms([a.seconds for a in group], 99),
            "max_ms": round(max(a.seconds for a in group) * 1000, 1),
            "answers": dict(Counter(answer_key(a) for a in group).most_common()),
        }
        for kind, group in sorted(kinds.items())
    }


def summarise(
    run: PhaseRun,
    *,
    recorder: Recorder,
    watch: QueueWatch,
    capacity: dict[int, int],
    baseline: dict | None,
) -> dict:
    """The phase in numbers, with its must-hold checks."""
    answers = [a for a in recorder.answers if run.started <= a.started < run.ended]
    places = queue_places(run, recorder)
    admitted_max = {c: watch.most_admitted(run.started, run.ended, c) for c in capacity}
    measures = dict(run.fault.measures) if run.fault else {}
    if run.fault is not None:
        measures["recovery"] = recovery(answers, run.fault)
    checks = (
        answer_checks(answers)
        + data_checks(run.database)
        + [
            must(
                "queue places kept (same relative order, nobody dropped)",
                places["problems"],
                places["problems"] == 0,
                0,
            )
        ]
        + capacity_checks(admitted_max, capacity)
        + fault_checks(run, answers, measures, recorder, baseline)
    )
    unavailable = [a for a in answers if a.status == 503]
    server_errors = [a for a in answers if a.server_error]
    return {
        "phase": run.name,
        "fault": run.title,
        "window_s": [round(run.started, 2), round(run.ended, 2)],
        "fault_window_s": [round(run.fault.started, 2), round(run.fault.ended, 2)]
        if run.fault
        else None,
        "requests": len(answers),
        "server_errors": len(server_errors),
        "server_error_samples": [_brief(a) for a in server_errors[:10]],
        "status_503": len(unavailable),
        "status_503_from_nginx": sum(a.from_proxy for a in unavailable),
        "no_answer": sum(a.status == 0 for a in answers),
        "all_p50_ms": percentile_ms([a.seconds for a in answers], 50),
        "by_kind": by_kind(answers),
        "measures": measures,
        "places": places,
        "admitted_max": {str(k): v for k, v in admitted_max.items()},
        "capacity": {str(k): v for k, v in capacity.items()},
        "database": run.database,
        "logs": run.logs,
        "checks": checks,
        "ok": all(c["ok"] for c in checks),
    }


def answer_checks(answers: list[Answer]) -> list[dict]:
    server_errors = sum(a.server_error for a in answers)
    unanswered = sum(a.status == 0 for a in answers)
    return [
        must("no 5xx but 503", server_errors, server_errors == 0, 0),
        must("every request answered", unanswered, unanswered == 0, 0),
    ]


def data_checks(database: dict) -> list[dict]:
    """Acknowledged writes, and the invariants that failed (all of them are in the JSON)."""
    lost = database.get("lost", [])
    checks = [must("no acknowledged write lost or changed", len(lost), not lost, 0)]
    return checks + [
        must(i["check"], i["value"], i["ok"], i["expected"])
        for i in database.get("invariants", [])
        if not i["ok"]
    ]


def capacity_checks(admitted_max: dict[int, int | None], capacity: dict[int, int]) -> list:
    return [
        must(
            f"admitted never above max_active (concert {concert_id})",
            admitted_max[concert_id],
            admitted_max[concert_id] is not None and admitted_max[concert_id] <= limit,
            f"<= {limit}",
        )
        for concert_id, limit in capacity.items()
    ]


def recovery(answers: list[Answer], fault: Fault) -> dict:
    """Time to recover: from the fault's end until the last 'unavailable' answer of a request
    sent since it began (0 when none came after the end); and the first success of each main
    kind after the end."""
    since = [a for a in answers if a.started >= fault.started]
    unavailable = [a for a in since if a.unavailable and a.code != "idempotency_in_progress"]
    last = max((a.ended for a in unavailable), default=None)
    first_success = {}
    for kind in MAIN_KINDS:
        ok = [
            a.ended
            for a in since
            if a.kind == kind and 200 <= a.status < 300 and a.ended >= fault.ended
        ]
        first_success[kind] = round(min(ok) - fault.ended, 2) if ok else None
    return {
        "unavailable_answers": len(unavailable),
        "last_unavailable_after_end_s": round(last - fault.ended, 2) if last else None,
        "time_to_recover_s": round(max(0.0, last - fault.ended), 2) if last else 0.0,
        "first_success_after_end_s": first_success,
    }


def queue_places(run: PhaseRun, recorder: Recorder) -> dict:
    """Places by the line snapshots (before the fault, after the recovery) and by what the
    customers saw during the phase."""
    lines = {}
    for concert_id, before in run.lines_before.items():
        made = functools.partial(recorder.nonces_made_since, since=before.at)
        lines[str(concert_id)] = places_kept(before, run.lines_after[concert_id], made)
    seen_lost = _during(recorder.lost_places, run)
    revived = _during(recorder.revived_entries, run)
    # One customer may show in several lists (dropped from the line, then refused when
    # polling): each customer counts once.
    customers = {(p["concert_id"], p["user_id"]) for p in seen_lost + revived}
    customers |= {(int(c), d["user_id"]) for c, line in lines.items() for d in line["dropped"]}
    return {
        "lines": lines,
        "lost_as_customers_saw_it": seen_lost,
        "finished_entries_revived": revived,
        "admissions_undone": _during(recorder.undone_admissions, run),
        "customers_affected": len(customers),
        "problems": len(customers) + sum(line["out_of_order"] for line in lines.values()),
    }


def _during(events: list[dict], run: PhaseRun) -> list[dict]:
    return [e for e in events if run.started <= e["at"] < run.ended]


def fault_checks(run, answers, measures, recorder, baseline) -> list[dict]:
    """The done-when of the issue that belongs to this phase's fault (adds its measures)."""
    checks_of = FAULT_CHECKS.get(run.name)
    if run.fault is None or checks_of is None:
        return []
    during = [a for a in answers if run.fault.started <= a.started < run.fault.ended]
    return checks_of(
        fault=run.fault, during=during, measures=measures, recorder=recorder, baseline=baseline
    )


def frozen_redis_checks(*, during, measures, baseline, **_) -> list[dict]:
    """Money calls do not need Redis: their p50 stays near the no-fault one. Queue calls do,
    and say so (503) at once."""
    checks = []
    for kind, label in (("charge", "wallet charges"), ("pay", "payments")):
        p50 = percentile_ms([a.seconds for a in during if a.kind == kind and a.status < 500], 50)
        base = (baseline or {}).get("by_kind", {}).get(kind, {}).get("p50_ms")
        measures[f"{kind}_p50_ms_frozen_vs_baseline"] = [p50, base]
        checks.append(
            must(
                f"{label} p50 with Redis frozen within {MONEY_P50_LIMIT:g}x of no fault",
                f"{p50} ms vs {base} ms",
                p50 is not None and base is not None and p50 <= MONEY_P50_LIMIT * base,
                f"<= {MONEY_P50_LIMIT:g}x",
            )
        )
    queue_503 = [a.seconds for a in during if a.kind in QUEUE_KINDS and a.status == 503]
    slowest = round(max(queue_503), 3) if queue_503 else None
    measures["queue_503s"] = {"count": len(queue_503), "max_s": slowest}
    checks.append(
        must(
            f"queue-gated calls answer 503 within {QUEUE_503_LIMIT_S} s",
            f"{len(queue_503)} answers, slowest {slowest} s",
            bool(queue_503) and slowest < QUEUE_503_LIMIT_S,
            f"< {QUEUE_503_LIMIT_S} s",
        )
    )
    return checks


def killed_worker_checks(*, fault, measures, recorder, **_) -> list[dict]:
    """Every write cut off by a killed worker gets its definite answer soon after."""
    retries = retries_after(recorder, fault)
    measures["retries"] = retries
    times = [r["definite_after_s"] for r in retries]
    slowest = None if None in times else max(times, default=None)
    payments = sum(r["kind"] == "pay" for r in retries)
    return [
        must(
            f"a write cut off by a killed worker gets a definite answer within "
            f"{RETRY_ANSWER_LIMIT_S:g} s of its 503",
            f"{len(retries)} cut off ({payments} payments), slowest {slowest} s",
            payments > 0 and slowest is not None and slowest < RETRY_ANSWER_LIMIT_S,
            f"< {RETRY_ANSWER_LIMIT_S:g} s, at least one payment",
        )
    ]


def killed_sweep_checks(*, measures, **_) -> list[dict]:
    """The kill left work undone (it was mid-sweep), and the restarted worker did it."""
    swept = measures.get("lapsed_holds_swept_s_after_restart")
    left = measures.get("lapsed_holds_at_kill", 0)
    return [
        must(
            "the worker was killed mid-sweep and the restarted one swept what it left",
            f"{left} lapsed holds left, swept {swept} s after the restart",
            left > 0 and swept is not None,
            "some left, swept within 30 s",
        )
    ]


def slow_socket_checks(*, during, measures, baseline, **_) -> list[dict]:
    """Every kind of call still answered while the sockets stall, and they did stall."""
    p50 = percentile_ms([a.seconds for a in during], 50)
    measures["all_requests_p50_ms_vs_baseline"] = [p50, (baseline or {}).get("all_p50_ms")]
    answered = {kind for kind in MAIN_KINDS for a in during if a.kind == kind and a.status < 500}
    least_open = 0.9 * measures.get("sockets", 0)
    return [
        must(
            "normal requests answer while the slow sockets stall",
            f"{len(during)} requests, kinds answered: {', '.join(sorted(answered))}",
            len(answered) == len(MAIN_KINDS),
            ", ".join(MAIN_KINDS),
        ),
        must(
            "the slow sockets stayed open",
            f"{measures.get('open_min')}-{measures.get('open_max')} open",
            measures.get("open_min", 0) >= least_open,
            f">= {least_open:.0f}",
        ),
    ]


FAULT_CHECKS = {
    "redis-stop": frozen_redis_checks,
    "gunicorn-kill": killed_worker_checks,
    "celery-kill": killed_sweep_checks,
    "slow-sockets": slow_socket_checks,
}


def retries_after(recorder: Recorder, fault: Fault) -> list[dict]:
    """Each write whose attempt got 'unavailable' during the fault: how long from that answer
    to the definite one."""
    retries = []
    for chain in list(recorder.chains):
        broken = [
            a for a in chain.interrupted if fault.started <= a.ended <= fault.ended + RETRY_WINDOW_S
        ]
        definite = chain.definite()
        if not broken or definite is None:
            if broken:
                retries.append({"kind": chain.kind, "key": chain.key, "definite_after_s": None})
            continue
        retries.append(
            {
                "kind": chain.kind,
                "key": chain.key,
                "interrupted_by": answer_key(broken[0]),
                "attempts": len(chain.attempts),
                "outcome": chain.outcome,
                "definite_after_s": round(definite.ended - broken[0].ended, 2),
            }
        )
    return retries


def _brief(answer: Answer) -> dict:
    return {
        "kind": answer.kind,
        "status": answer.status,
        "code": answer.code,
        "from_nginx": answer.from_proxy,
        "at": round(answer.started, 2),
        "seconds": round(answer.seconds, 3),
        "body": answer.body if not isinstance(answer.body, dict | list) else None,
    }


# --- the table --------------------------------------------------------------------------------
COLUMNS = (
    "fault",
    "requests",
    "5xx",
    "503s",
    "data lost",
    "time to recover",
    "queue places kept",
    "notes / measures",
    "must-holds",
)


LEGEND = (
    "- **requests**: every call the customers made during the phase (steady load, fault, "
    "recovery); **5xx**: answers 500-599 other than 503, which must be none; **503s**: "
    "'unavailable, retry after' (by nginx: no worker answered).",
    "- **data lost**: acknowledged writes (201 hold, payment, charge; 204 cancel) missing or "
    "not as answered, and broken invariants, in a snapshot of the database after the phase.",
    "- **time to recover**: from the end of the fault (the server answering again, the "
    "process back) to the last 503 or unanswered call; in brackets, until every kind of call "
    "(enter, poll, seat map, hold, pay, charge) had succeeded again.",
    "- **queue places kept**: the whole line of both concerts read from Redis before the "
    "fault and after the recovery: everyone still waiting in the same relative order, nobody "
    "dropped; and no customer refused a place or session they had.",
)


def markdown(phases: list[dict], final: dict, meta: dict) -> str:
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" if i in (0, 6, 7, 8) else "--:" for i in range(len(COLUMNS))) + "|",
    ]
    lines += ["| " + " | ".join(row(p)) + " |" for p in phases]
    failed = [
        f"{p['phase']}: {c['check']} ({c['value']})"
        for p in phases
        for c in p["checks"]
        if not c["ok"]
    ]
    failed += [
        f"final: {c['check']} ({c['value']})" for c in final.get("checks", []) if not c["ok"]
    ]
    if meta["aborted"]:
        failed.insert(0, f"the run was cut short ({meta['aborted']})")
    if meta["load_errors"]:
        failed.append(f"customer threads broke: {'; '.join(meta['load_errors'])}")
    verdict = "every must-hold check passed" if not failed else "FAILED: " + "; ".join(failed)
    return "\n".join(
        [
            f"# bin/chaos: {meta['when']}, {meta['elapsed_s']:.0f} s",
            "",
            f"`{meta['command']}` on {meta['machine']}; commit {meta['commit'][:12]}"
            f"{' (with uncommitted changes)' if meta['dirty'] else ''}.",
            "",
            *lines,
            "",
            *LEGEND,
            "",
            f"Final check with everything stopped: {final_line(final)}.",
            "",
            f"**{verdict}**",
        ]
    )


def row(phase: dict) -> list[str]:
    lost = len(phase["database"].get("lost", []))
    broken = [i for i in phase["database"].get("invariants", []) if not i["ok"]]
    data = "none" if not lost and not broken else f"{lost} writes, {len(broken)} invariants"
    recovery_ = phase["measures"].get("recovery")
    recover = "-"
    if recovery_ is not None:
        firsts = [s for s in recovery_["first_success_after_end_s"].values() if s is not None]
        every_kind = f" ({max(firsts):.1f} s)" if firsts else ""
        recover = f"{recovery_['time_to_recover_s']:.1f} s{every_kind}"
    nginx = phase["status_503_from_nginx"]
    return [
        f"{phase['fault']}",
        str(phase["requests"]),
        str(phase["server_errors"]),
        f"{phase['status_503']}" + (f" ({nginx} by nginx)" if nginx else ""),
        data,
        recover,
        places_cell(phase["places"]),
        notes(phase),
        "ok"
        if phase["ok"]
        else "FAIL: " + "; ".join(c["check"] for c in phase["checks"] if not c["ok"]),
    ]


def places_cell(places: dict) -> str:
    lines = places["lines"].values()
    kept = sum(line["still_waiting"] for line in lines)
    waited = sum(line["waiting_before"] for line in lines)
    if places["problems"]:
        dropped = sum(len(line["dropped"]) for line in lines)
        order = sum(line["out_of_order"] for line in lines)
        seen = len(places["lost_as_customers_saw_it"])
        revived = len(places["finished_entries_revived"])
        return (
            f"NO: {places['customers_affected']} customers: {dropped} dropped from the line, "
            f"{seen} refused a place they had, {revived} finished entries back to life; "
            f"{order} out of order"
        )
    return f"yes: {kept} of {waited} still waiting, same order; {waited - kept} let in since"


def notes(phase: dict) -> str:
    m = phase["measures"]
    parts = []
    admitted = ", ".join(f"{phase['admitted_max'][k]}/{v}" for k, v in phase["capacity"].items())
    parts.append(f"admitted at most {admitted}")
    if "charge_p50_ms_frozen_vs_baseline" in m:
        c, p = m["charge_p50_ms_frozen_vs_baseline"], m["pay_p50_ms_frozen_vs_baseline"]
        parts.append(f"p50 charge {c[0]} ms (no fault {c[1]}), payment {p[0]} ms (no fault {p[1]})")
        parts.append(
            f"queue calls' 503s: {m['queue_503s']['count']}, slowest {m['queue_503s']['max_s']} s"
        )
    if "retries" in m:
        times = sorted(
            r["definite_after_s"] for r in m["retries"] if r["definite_after_s"] is not None
        )
        payments = sum(r["kind"] == "pay" for r in m["retries"])
        parts.append(
            f"{len(m['kills'])} workers killed; {len(m['retries'])} writes cut off "
            f"({payments} payments), definite answers {times} s after the 503"
        )
    if "killed" in m:
        at = f" ({m['statement'][:60]}...)" if m.get("statement") else ""
        parts.append(
            f"killed {m['killed']}{at}"
            + (f" (kill {m['kills']})" if m["kills"] > 1 else "")
            + f"; worker back in {m['worker_ready_s']} s; the {m['lapsed_holds_at_kill']} "
            f"lapsed holds it left undone swept {m['lapsed_holds_swept_s_after_restart']} s after"
        )
    if "all_requests_p50_ms_vs_baseline" in m:
        p = m["all_requests_p50_ms_vs_baseline"]
        parts.append(
            f"{m['open_min']}-{m['open_max']} slow sockets open ({m['opened']} opened); p50 {p[0]} ms (no fault {p[1]})"
        )
    if "restart_s" in m:
        parts.append(f"back in {m['restart_s']} s")
    restored = phase["logs"].get("celery.log", {}).get("sessions_put_back")
    if restored:
        parts.append(
            "after the loss the database put back "
            + ", ".join(f"{n} admitted sessions (concert {c})" for c, n in restored)
        )
    resumed = m.get("admission_resumed_s")
    if resumed:
        parts.append(
            "admitting again "
            + ", ".join(f"{s} s (concert {c})" for c, s in resumed.items())
            + " after the end"
        )
    undone = len(phase["places"]["admissions_undone"])
    if undone:
        parts.append(f"{undone} admissions undone (back to waiting)")
    return "; ".join(parts)


def final_line(final: dict) -> str:
    acks = final.get("acknowledged", {})
    failed = [c for c in final.get("checks", []) if not c["ok"]]
    counted = ", ".join(f"{n} {kind}" for kind, n in acks.items())
    return f"{counted} acknowledged, all present" if not failed else f"{len(failed)} checks failed"


def write(report: dict, text: str, stem: Path) -> None:
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    stem.with_suffix(".md").write_text(text + "\n")
