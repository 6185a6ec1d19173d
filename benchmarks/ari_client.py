"""ARI client benchmark: our `pbx_service.ari.AriClient` against the transport's limit (a bare
aiohttp loop) and the peer libraries aioari, ari-client and asyncari, in one run.

A fake ARI server (`ari_fake_server.py`, its own process, so its CPU is not counted) pushes
N ARI-shaped events (~570 bytes each, the shapes of Asterisk 22's in the reference traces)
over a real WebSocket and answers ``POST /ari/channels/{id}/answer`` with 204. Each client is
measured in its own process (`ari_measure.py`); every peer in a throwaway virtualenv made here
with ``python -m venv`` and ``pip install``. Figures are medians of ``--runs`` runs: events/s,
the client's CPU µs per event, REST calls/s with 1 and with 20 in flight.

The Swagger files the peers need are served from the ARI reference folder at run time:
``$PBX_ARI_REFERENCE`` or ``<repo>/../shared/ari-reference``.

Against a real Asterisk (REST part only; events always come from the fake server):
  PBX_BENCH_ARI_URL=http://127.0.0.1:8088  PBX_BENCH_ARI_USER=ari  PBX_BENCH_ARI_PASSWORD=...
Every client then answers channels that do not exist: each call is a full round trip through
Asterisk's REST stack ending in 404, which the clients count as done.

    python benchmarks/ari_client.py            # 50,000 events, 2,000 REST calls, 3 runs
    python benchmarks/ari_client.py --quick    # ~1 minute
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MEASURE = HERE / "ari_measure.py"
SERVER = HERE / "ari_fake_server.py"
OURS = ("ours", "ours-dispatch", "bare", "bare-queues", "rest-ab")
PEERS = {
    "aioari": "aioari",
    "aioari-queues": "aioari",
    "ari-client": "ari-client",
    "asyncari": "asyncari",
}
USER, PASSWORD = "bench", "bench-secret"

LABELS = {
    "ours": "ours: AriClient, listener does nothing",
    "ours-dispatch": "ours: AriClient + EventDispatcher, a task per call",
    "bare": "limit: aiohttp ws_connect + orjson + dict dispatch",
    "bare-queues": "limit + a queue and a task per call (design floor)",
    "rest-ab": "REST A/B: ours and the bare session alternating in one process",
    "aioari": "aioari, listener does nothing",
    "aioari-queues": "aioari + the same queue and task per call",
    "ari-client": "ari-client (a task per event, its design)",
    "asyncari": "asyncari (its async for)",
}


def ari_reference() -> Path:
    """The ARI reference folder (api-docs/ and traces/), never copied into the repository."""
    env = os.environ.get("PBX_ARI_REFERENCE")
    path = Path(env) if env else REPO.parent / "shared" / "ari-reference"
    if not (path / "api-docs" / "resources.json").is_file():
        sys.exit(
            f"ARI reference not found at {path} (need api-docs/resources.json); "
            "set PBX_ARI_REFERENCE to the folder holding api-docs/"
        )
    return path


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    model = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }


@contextmanager
def fake_server(api_docs: Path) -> Iterator[str]:
    """Start the fake ARI server; yields its base URL ``http://127.0.0.1:PORT``."""
    proc = subprocess.Popen(
        [
            sys.executable,
            str(SERVER),
            "--api-docs",
            str(api_docs),
            "--user",
            USER,
            "--password",
            PASSWORD,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith("PORT "):
            raise SystemExit(f"fake ARI server did not start (said {line!r})")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def prepare_events(base: str, events: int, runs: int) -> None:
    """Have the server build its event buffers before any timing starts."""
    from ari_measure import WARMUP_EVENTS, seeds

    for run in range(runs):
        warmup, timed = seeds(run)
        for n, seed in ((min(WARMUP_EVENTS, events), warmup), (events, timed)):
            _post(f"{base}/_bench/prepare?n={n}&seed={seed}")


def _post(url: str) -> None:
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"only the local fake server is prepared, not {url}")
    req = urllib.request.Request(url, method="POST")
    with urllib.request.urlopen(req, timeout=120) as resp:
        resp.read()


def make_venv(root: Path, package: str) -> tuple[Path | None, str]:
    """A throwaway virtualenv with ``package``; (its python, "") or (None, why not)."""
    venv = root / package
    python = venv / "bin" / "python"
    if python.exists() and _installed(python, package):
        return python, ""
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, text=True
        )
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", package],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or exc.stdout or "").strip().splitlines()[-3:]
        return None, f"install failed: {' / '.join(tail)}"
    except subprocess.TimeoutExpired:
        return None, "install timed out"
    return python, ""


def _installed(python: Path, package: str) -> bool:
    probe = subprocess.run(
        [str(python), "-m", "pip", "show", "-q", package], capture_output=True, text=True
    )
    return probe.returncode == 0


def measure(
    python: Path | str,
    kind: str,
    events_url: str,
    rest: Mapping[str, str],
    args: argparse.Namespace,
    run: int,
) -> dict[str, Any]:
    """Run `ari_measure.py` for one run of one client; its ``RESULT``, or an error."""
    rest_calls = 0 if kind in ("bare-queues", "aioari-queues") else args.rest_calls
    if kind == "rest-ab":
        # At least 10 pairs of 100-call blocks, or one disturbed block decides the ratio.
        rest_calls = max(rest_calls, 1000)
    events = 0 if kind == "rest-ab" else args.events
    cmd = [
        str(python), str(MEASURE), kind,
        "--events-url", events_url,
        "--rest-url", rest["url"],
        "--user", USER,
        "--password", PASSWORD,
        "--rest-user", rest["user"],
        "--rest-password", rest["password"],
        "--events", str(events),
        "--rest-calls", str(rest_calls),
        "--runs", "1",
        "--first-run", str(run),
    ]  # fmt: skip
    env = dict(os.environ)
    # Our client is imported from this checkout, whatever is installed.
    env["PYTHONPATH"] = str(REPO) if kind in OURS else ""
    timeout = 120 + events * 0.002 + rest_calls * 0.02
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"kind": kind, "error": f"did not finish within {timeout:.0f}s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            if "error" in result:
                result["stderr"] = done.stderr.strip().splitlines()[-5:]
            return result
    tail = " / ".join(done.stderr.strip().splitlines()[-3:])
    return {"kind": kind, "error": f"exit {done.returncode}: {tail}"}


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def evaluate(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The targets, each with the figures it compares and met/missed."""

    def med(kind: str, key: str) -> float | None:
        value = results.get(kind, {}).get("median", {}).get(key)
        return float(value) if value is not None else None

    def per_cpu_s(kind: str) -> float | None:
        us = med(kind, "cpu_us_event")
        return 1e6 / us if us else None

    targets: list[dict[str, Any]] = []

    def ratio_target(name: str, ours: float | None, other: float | None, need: float) -> None:
        if ours is None or other is None:
            targets.append({"target": name, "status": "not measured"})
            return
        ratio = ours / other
        targets.append(
            {
                "target": name,
                "ratio": ratio,
                "need": need,
                "status": "met" if ratio >= need else "missed",
            }
        )

    for kind in ("ours", "ours-dispatch"):
        label = "ours" if kind == "ours" else "ours+dispatch"
        ratio_target(
            f"{label} events per CPU-second >= 1.5x aioari's",
            per_cpu_s(kind), per_cpu_s("aioari"), 1.5,
        )  # fmt: skip
        ratio_target(
            f"{label} events per CPU-second >= 10x ari-client's",
            per_cpu_s(kind), per_cpu_s("ari-client"), 10.0,
        )  # fmt: skip
        # "Within 2x" of the bare loop: at least half its events per CPU-second.
        ratio_target(
            f"{label} within 2x of the bare loop (events per CPU-second)",
            per_cpu_s(kind), per_cpu_s("bare"), 0.5,
        )  # fmt: skip
    # Not in the brief: the dispatcher against the same design on the bare loop and on aioari.
    ratio_target(
        "ours+dispatch within 2x of bare-queues (events per CPU-second; own check)",
        per_cpu_s("ours-dispatch"), per_cpu_s("bare-queues"), 0.5,
    )  # fmt: skip
    ratio_target(
        "ours+dispatch >= 1.5x aioari + the same queues (events per CPU-second; own check)",
        per_cpu_s("ours-dispatch"), per_cpu_s("aioari-queues"), 1.5,
    )  # fmt: skip
    for n in (1, 20):
        # The paired A/B figures when measured: separate processes are too noisy here.
        ours_rest: float | None
        bare_rest: float | None
        if med("rest-ab", f"ratio_rest{n}") is not None:
            # Median ratio of paired blocks, ours/bare.
            ours_rest, bare_rest = med("rest-ab", f"ratio_rest{n}"), 1.0
            how = " (A/B, median of paired blocks)"
        else:
            ours_rest, bare_rest = med("ours", f"rest{n}_s"), med("bare", f"rest{n}_s")
            how = ""
        ratio_target(
            f"ours REST calls/s ({n} in flight) >= 90% of a bare shared aiohttp session{how}",
            ours_rest, bare_rest, 0.9,
        )  # fmt: skip
    return targets


def report(
    results: dict[str, dict[str, Any]], targets: list[dict[str, Any]], info: Mapping[str, Any]
) -> None:
    print()
    print("Machine: " + ", ".join(f"{k} {v}" for k, v in info["machine"].items()))
    print(
        f"Events: {info['events']:,} per run (mean {info['event_bytes']:.0f} B of JSON), "
        f"REST calls: {info['rest_calls']:,} per run, REST server: {info['rest_server']}; "
        f"medians of {info['runs']} runs"
    )
    print()
    header = ("client", "version", "events/s", "CPU µs/event", "events/CPU-s", "REST/s 1",
              "REST/s 20", "REST CPU µs/call")  # fmt: skip
    rows = [header]
    for kind, result in results.items():
        if "error" in result or kind == "rest-ab":
            continue
        m = result["median"]
        us = m.get("cpu_us_event")
        rows.append(
            (
                LABELS.get(kind, kind),
                result.get("version", "?"),
                _fmt(m.get("events_s")),
                _fmt(us, 1),
                _fmt(1e6 / us if us else None),
                _fmt(m.get("rest1_s")),
                _fmt(m.get("rest20_s")),
                _fmt(m.get("rest1_cpu_us")),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for i, row in enumerate(rows):
        print("  ".join(c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in
                        enumerate(zip(row, widths, strict=True))))  # fmt: skip
        if i == 0:
            print("  ".join("-" * w for w in widths))
    ab = results.get("rest-ab", {}).get("median")
    if ab:
        print(
            f"\nREST A/B, one process, blocks of 100 calls alternating (medians of {info['runs']}):"
        )
        for side in ("ours", "bare"):
            print(
                f"  {side:5} 1 in flight {ab[side + '_rest1_s']:7,.0f}/s "
                f"({ab[side + '_rest1_cpu_us']:4.0f} µs CPU/call)   20 in flight "
                f"{ab[side + '_rest20_s']:7,.0f}/s ({ab[side + '_rest20_cpu_us']:4.0f} µs CPU/call)"
            )
        print(
            f"  ours/bare, median of paired blocks: 1 in flight {ab['ratio_rest1']:.2f}x, "
            f"20 in flight {ab['ratio_rest20']:.2f}x"
        )
        print(
            f"  A/A noise floor, a second bare session/bare: 1 in flight "
            f"{ab['aa_ratio_rest1']:.2f}x, 20 in flight {ab['aa_ratio_rest20']:.2f}x"
        )
    for kind, result in results.items():
        if "error" in result:
            print(f"\n{LABELS.get(kind, kind)}: NOT MEASURED: {result['error']}")
    print("\nTargets:")
    for t in targets:
        if "ratio" in t:
            status = f"[{t['status'].upper()}]"
            print(f"  {status:8} {t['target']}: {t['ratio']:.2f}x (need {t['need']}x)")
        else:
            print(f"  [{t['status'].upper()}] {t['target']}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=50_000, help="events per run (50,000)")
    parser.add_argument("--rest-calls", type=int, default=2_000, help="REST calls per run (2,000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per client; medians (3)")
    parser.add_argument(
        "--quick", action="store_true", help="5,000 events and 300 REST calls: about a minute"
    )
    parser.add_argument(
        "--clients",
        default=",".join([*OURS, *PEERS]),
        help="comma-separated subset of: " + ", ".join([*OURS, *PEERS]),
    )
    parser.add_argument(
        "--venv-dir",
        type=Path,
        help="keep the peers' virtualenvs here and reuse them (default: a temp dir, removed)",
    )
    parser.add_argument("--json", type=Path, help="also write all figures to this file")
    args = parser.parse_args()
    if args.quick:
        args.events, args.rest_calls = 5_000, 300
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    unknown = set(clients) - {*OURS, *PEERS}
    if unknown:
        parser.error(f"unknown clients {sorted(unknown)}; choose from {[*OURS, *PEERS]}")

    api_docs = ari_reference() / "api-docs"
    real = os.environ.get("PBX_BENCH_ARI_URL", "").strip().rstrip("/")
    if real.endswith("/ari"):
        real = real[: -len("/ari")]
    started = time.monotonic()
    results: dict[str, dict[str, Any]] = {}

    venv_root = args.venv_dir or Path(tempfile.mkdtemp(prefix="pbx-bench-venvs-"))
    venv_root.mkdir(parents=True, exist_ok=True)
    pythons: dict[str, Path] = {}
    try:
        peers = [c for c in clients if c in PEERS]
        if peers:
            print(f"installing peers into virtualenvs under {venv_root} ...", flush=True)
            # Before any timing, so pip's CPU does not disturb a measurement.
            packages = sorted({PEERS[p] for p in peers})
            with concurrent.futures.ThreadPoolExecutor(len(packages)) as pool:
                made = dict(zip(packages, pool.map(lambda p: make_venv(venv_root, p), packages),
                                strict=True))  # fmt: skip
            for peer in peers:
                python, why = made[PEERS[peer]]
                if python is None:
                    print(f"  {peer}: cannot be installed ({why}); carrying on without it")
                    results[peer] = {"kind": peer, "error": f"cannot be installed: {why}"}
                else:
                    pythons[peer] = python

        with fake_server(api_docs) as base:
            rest = {"url": base, "user": USER, "password": PASSWORD}
            if real:
                rest = {
                    "url": real,
                    "user": os.environ.get("PBX_BENCH_ARI_USER", "ari"),
                    "password": os.environ.get("PBX_BENCH_ARI_PASSWORD", ""),
                }
            if args.events:
                prepare_events(base, args.events, args.runs)
            # Runs interleave (run 1 of every client, then run 2, ...): load from elsewhere on
            # the machine then spreads over all clients instead of spoiling one.
            runs: dict[str, list[dict[str, Any]]] = {k: [] for k in clients if k not in results}
            for run in range(args.runs):
                for kind in list(runs):
                    python = pythons.get(kind, Path(sys.executable))
                    print(f"run {run + 1}/{args.runs}: {kind} ...", flush=True)
                    outcome = measure(python, kind, base, rest, args, run)
                    if "error" in outcome:
                        print(f"  {kind} failed: {outcome['error']}", flush=True)
                        results[kind] = outcome
                        del runs[kind]
                    else:
                        outcome["median"] = outcome["runs"][0]
                        runs[kind].append(outcome)
            for kind, outcomes in runs.items():
                figures = [o["runs"][0] for o in outcomes]
                results[kind] = {
                    "kind": kind,
                    "version": outcomes[0]["version"],
                    "median": {k: statistics.median(f[k] for f in figures) for k in figures[0]},
                    "runs": figures,
                }
    finally:
        if args.venv_dir is None:
            shutil.rmtree(venv_root, ignore_errors=True)

    from ari_fake_server import generate_events  # same process: the mean size of what was sent

    sample = generate_events(min(args.events, 20_000) or 1)
    info = {
        "machine": machine(),
        "events": args.events,
        "rest_calls": args.rest_calls,
        "runs": args.runs,
        "event_bytes": sum(map(len, sample)) / len(sample),
        "rest_server": f"real Asterisk at {real}" if real else "fake server",
        "seconds": round(time.monotonic() - started, 1),
    }
    targets = evaluate(results)
    report(dict(sorted(results.items(), key=lambda kv: [*OURS, *PEERS].index(kv[0]))), targets,
           info)  # fmt: skip
    print(f"\n(took {info['seconds']}s)")
    if args.json:
        args.json.write_text(
            json.dumps({"info": info, "results": results, "targets": targets}, indent=2)
        )


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
