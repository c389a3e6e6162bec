"""The machine and the code under test.

A run benchmarks a copy of the code taken at its start: gunicorn recycles its workers now and
then, and a fresh worker would otherwise import whatever someone has half-edited since.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

from bench.harness import ROOT

WORKTREE = "worktree"  # --code: the working tree as it is at the start (tracked and untracked)


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    memory = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
    return {
        "nproc": len(os.sched_getaffinity(0)),  # as `nproc` counts them
        "cpu_model": model.group(1).strip() if model else platform.processor(),
        "mem_gb": round(int(memory.group(1)) / 1024 / 1024, 1) if memory else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": loadavg(),
    }


def loadavg() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


def _git(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    # --no-optional-locks: never take the index lock from under someone working in the tree
    return subprocess.run(
        ["git", "--no-optional-locks", *args], cwd=ROOT, capture_output=True, check=check
    )


def git_state() -> dict:
    return {
        "commit": _git("rev-parse", "HEAD").stdout.decode().strip(),
        "dirty_files": len(_git("status", "--porcelain").stdout.splitlines()),
    }


def snapshot_code(ref: str, dest: Path) -> dict:
    """Copy the code to `dest`: the working tree's tracked and untracked, not ignored files
    (`ref` = worktree), or the tree of a git ref. Returns what was copied."""
    dest.mkdir()
    if ref == WORKTREE:
        _copy_worktree(dest)
        commit = git_state()["commit"]
    else:
        commit = _git("rev-parse", ref, check=True).stdout.decode().strip()
        archive = _git("archive", commit, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return {"code": ref, "commit": commit}


def _copy_worktree(dest: Path) -> None:
    listing = _git("ls-files", "-z", "--cached", "--others", "--exclude-standard", check=True)
    for name in filter(None, listing.stdout.decode().split("\0")):
        source = ROOT / name
        if source.is_file():  # (a tracked file deleted in the tree is not copied)
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
