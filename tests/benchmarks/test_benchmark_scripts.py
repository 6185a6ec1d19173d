"""The full-flow benchmark scripts run on a clean checkout, at a tiny size: each starts the
daemon, the simulator and PostgreSQL, drives calls, and reports no lost call. Their speed
figures are not checked here (timing belongs in `benchmarks/`, never in the suite); the
functional targets are: no call lost, no per-call `GET .../variable`, a resync with 2 requests
that leaves no call in a wrong state."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(script: str, *args: str, timeout: float = 240) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PBX_BENCH_")}
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr[-3000:]}"
    return done.stdout


def met(output: str, target: str) -> None:
    lines = [line for line in output.splitlines() if target in line]
    assert lines, f"no target line with {target!r} in:\n{output}"
    assert all("[MET]" in line for line in lines), "\n".join(lines)


@pytest.mark.timeout(300)
def test_load_script_small() -> None:
    out = run(
        "load.py", "--levels", "4,8", "--settle", "2", "--window", "4", "--min-starts", "1",
        "--agents", "4", "--talk-min", "2", "--talk-max", "4",
    )  # fmt: skip
    met(out, "0 lost calls")
    met(out, "no GET .../variable per call")
    assert "event->command p50" in out and "PUT /deviceStates/{id}" in out


@pytest.mark.timeout(300)
def test_resync_script_small() -> None:
    out = run(
        "resync.py", "--calls", "16", "--agents", "5", "--hangups", "4", "--gap", "1",
        "--settle", "2", "--rate", "16",
    )  # fmt: skip
    met(out, "requests to rebuild state = 2")
    met(out, "calls left in a wrong state = 0")
    met(out, "0 lost calls afterwards")


@pytest.mark.timeout(300)
def test_soak_script_small() -> None:
    out = run("soak.py", "--calls", "120", "--concurrent", "15", "--rate", "30", "--agents", "8")
    met(out, "0 lost calls")
    assert "RSS within 5% of its level after warm-up" in out
