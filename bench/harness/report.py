"""The suite's report: each row against the ceiling and the performance budget, as JSON (all
of it) and as the markdown table printed at the end.
"""

from __future__ import annotations

import json
from pathlib import Path

# The performance budget (docs/performance.md): throughput as a share of the ceiling's.
TARGETS = {
    "queue status 10k": 0.85,
    "queue status 1M": 0.85,
    "seat map 50": 0.50,
    "queue enter": 0.50,
    "hold, contended": 0.40,
    "hold, uncontended": 0.40,
    "payment": 0.25,
}
LATENCY_GROWTH_LIMIT = 1.5  # queue status latency at 1M waiting / at 10k


def evaluate_targets(rows: list[dict]) -> list[dict]:
    """Give every row its ratio to the ceiling (when the ceiling ran); the budget's verdicts."""
    by_name = {r["row"]: r for r in rows}
    ceiling = by_name.get("ceiling", {}).get("requests_per_s")
    if ceiling:
        for row in rows:
            row["ratio_to_ceiling"] = round(row["requests_per_s"] / ceiling, 3)
    verdicts = [
        {
            "target": f"{name} >= {share:.0%} of the ceiling",
            "value": f"{by_name[name]['ratio_to_ceiling']:.0%}",
            "met": by_name[name]["ratio_to_ceiling"] >= share,
        }
        for name, share in TARGETS.items()
        if ceiling and name in by_name
    ]
    small, big = by_name.get("queue status 10k"), by_name.get("queue status 1M")
    if small and big:
        for p in ("p50_ms", "p99_ms"):
            growth = big[p] / small[p]
            verdicts.append(
                {
                    "target": f"queue status {p[:3]} at 1M <= {LATENCY_GROWTH_LIMIT}x at 10k",
                    "value": f"{growth:.2f}x ({big[p]:.1f} / {small[p]:.1f} ms)",
                    "met": growth <= LATENCY_GROWTH_LIMIT,
                }
            )
    return verdicts


def all_checks(report: dict) -> list[dict]:
    checks = [c for r in report["rows"] for c in r["checks"]] + report["final_checks"]
    checks += (report.get("propagation") or {}).get("checks", [])
    checks += (report.get("onsale_large") or {}).get("checks", [])
    return checks + (report["onsale"] or {}).get("checks", [])


def write_report(report: dict, text: str, results: Path, name: str) -> None:
    (results / f"{name}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (results / f"{name}.md").write_text(text + "\n")


def _ms(value: float | None) -> str:
    return "?" if value is None else f"{value:.1f}"


def markdown(report: dict, sections: list[str]) -> str:
    """The table of rows, the targets, the checks, then `sections` (the on-sale scenario's)."""
    out = _header(report)
    if report["rows"]:
        out += ["", *_rows_table(report["rows"])]
    if report["targets"]:
        out += ["", "| target | measured | met |", "|---|--:|---|"]
        out += [
            f"| {t['target']} | {t['value']} | {'yes' if t['met'] else '**no**'} |"
            for t in report["targets"]
        ]
    out += ["", _correctness(report)]
    out += [text for section in sections for text in ("", section)]
    if report.get("aborted"):
        out += ["", f"**Aborted**: {report['aborted']}"]
    return "\n".join(out)


def _header(report: dict) -> list[str]:
    m, s = report["machine"], report["settings"]
    return [
        f"## Benchmark suite ({report['when']})",
        "",
        f"- machine: {m['nproc']} CPUs, {m['cpu_model']}, {m['mem_gb']} GB; load average "
        f"{' '.join(m['loadavg_at_start'])} at start, {' '.join(m['loadavg_at_end'])} at end",
        f"- code: a copy of the {report['git']['code']} at {report['git']['commit'][:12]} "
        f"({report['git']['dirty_files']} files changed in the working tree at start)",
        f"- command: `{report['command']}` ({report['elapsed_s']:.0f} s in all, "
        f"{report['preparation'].get('seconds', 0):.0f} s of it preparing data)",
        f"- {'nginx in front of ' if s.get('proxy', 'none') != 'none' else ''}"
        f"{_web(s)}, production settings; Celery worker + beat; "
        f"wrk with {s['connections']} connections: reads for {s['read_seconds']} s each after "
        f"{s['warmup_seconds']} s of warm-up, the best of {s['read_rounds']} rounds; "
        "writes a prepared list sent once",
    ]


def _web(settings: dict) -> str:
    nodes = settings.get("web_nodes", 1)
    if nodes > 1:
        return f"{nodes} gunicorn nodes of {settings['workers']} sync workers each"
    return f"gunicorn: {settings['workers']} sync workers"


def propagation_markdown(result: dict) -> str:
    """The propagation probe (bench/rows/propagation.py) as a few lines."""
    failed = [c for c in result["checks"] if not c["ok"]]
    verdict = f"**{len(failed)} FAILED**" if failed else f"{len(result['checks'])} checks ok"
    pause, resume = result["pause"], result["resume"]
    return "\n".join(
        [
            f"### Propagation over {result['nodes']} web node(s) of "
            f"{result['workers_per_node']} workers ({verdict})",
            "",
            f"- an operator's pause: the last stale answer came {pause['last_stale_s']} s after "
            f"it (by node: {', '.join(map(str, pause['last_stale_by_node_s']))}); the resume: "
            f"{resume['last_stale_s']} s; LOCAL_CACHE_SECONDS = {result['local_cache_seconds']}"
            f" ({pause['answers'] + resume['answers']} polls sent to the nodes directly)",
            f"- a seat held through the first node, then read on the others: "
            f"{', '.join(map(str, result['seat_map']['seen_by_other_nodes']))}",
        ]
        + [f"- **FAILED** {c['check']}: {c['value']} ({c['expected']})" for c in failed]
    )


def _rows_table(rows: list[dict]) -> list[str]:
    out = [
        "| row | req/s | ratio to ceiling | p50 ms | p99 ms | answers | CPU ms/req | checks |",
        "|---|--:|--:|--:|--:|---|--:|---|",
    ]
    for r in rows:
        statuses = ", ".join(f"{code}: {n}" for code, n in r["statuses"].items())
        failed = [c for c in r["checks"] if not c["ok"]]
        checks = f"**{len(failed)} FAILED**" if failed else f"{len(r['checks'])} ok"
        ratio = r.get("ratio_to_ceiling")
        out.append(
            f"| {r['row']} | {r['requests_per_s']:.0f} | "
            f"{'' if ratio is None else f'{ratio:.0%}'} | {_ms(r['p50_ms'])} | {_ms(r['p99_ms'])} | "
            f"{statuses} | {r['cpu']['gunicorn_cpu_ms_per_request']:.2f} | {checks} |"
        )
    return out


def _correctness(report: dict) -> str:
    failed = [(r["row"], c) for r in report["rows"] for c in r["checks"] if not c["ok"]]
    failed += [("after the runs", c) for c in report["final_checks"] if not c["ok"]]
    n_checks = sum(len(r["checks"]) for r in report["rows"]) + len(report["final_checks"])
    return f"Correctness: {n_checks - len(failed)} of {n_checks} checks pass" + "".join(
        f"\n- **FAILED** {row}: {c['check']}: {c['value']}" for row, c in failed
    )
