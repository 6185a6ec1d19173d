"""The daemon under load, in a process of its own, with the probes the full-flow benchmarks read.

Started by `rig.Rig` (not meant to be run by hand)::

    python benchmarks/load_daemon.py --config daemon.yaml --database-url URL --data-dir DIR

It runs the real `pbx_service.daemon.Daemon` and adds, from the outside, only measurement:

* `AriRest.observer` (see `pbx_service.ari.probe`): every REST request by method and path
  template, and the time from the event that caused it being read off the socket until the
  request is sent;
* a loop watcher: a task sleeping 10 ms and measuring how late it wakes (the longest stall);
* the resync: when the socket came back, how long the resync took, which requests it sent.

Commands, one per line on stdin, each answered by one JSON line on stdout: ``snap`` (figures
since the last snap; request counts are cumulative), ``calls`` (channel ids of live calls),
``resync`` (the last reconnect's figures), ``flush`` (the call-log writer), ``memmark`` and
``memtop`` (where memory grew since the mark; with ``--tracemalloc``), ``quit``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

from pbx_service.calls.app import CallApplication
from pbx_service.config.load import load_config
from pbx_service.daemon import Daemon, Database

# Path segments after which the next one is an id (or a name) in ARI's URL scheme.
_COLLECTIONS = frozenset(
    {"channels", "bridges", "playbacks", "live", "stored", "deviceStates", "endpoints"}
    | {"play", "record", "snoop", "moh"}
)
_NOT_IDS = frozenset({"create", "externalMedia"})
STALL_TICK = 0.010


def path_template(path: str) -> str:
    """``/channels/abc/play`` -> ``/channels/{id}/play``."""
    out: list[str] = []
    previous = ""
    for part in path.split("?", 1)[0].split("/"):
        out.append("{id}" if previous in _COLLECTIONS and part not in _NOT_IDS else part)
        previous = part
    return "/".join(out)


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class Probe:
    def __init__(self) -> None:
        self.lags: list[float] = []
        self.lags_by_request: dict[str, list[float]] = {}
        self.requests: Counter[str] = Counter()
        self.max_stall = 0.0
        self.reconnected_at: float | None = None
        self.requests_at_reconnect: Counter[str] = Counter()
        self.resync: dict[str, Any] = {}
        self.max_gc_pause = 0.0
        self.max_gc_generation = -1
        self._gc_started = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        """Time each garbage collection: a full one over a big heap stalls the loop."""
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        pause = time.perf_counter() - self._gc_started
        if pause > self.max_gc_pause:
            self.max_gc_pause = pause
            self.max_gc_generation = info.get("generation", -1)

    def observe(self, method: str, path: str, lag: float | None) -> None:
        key = f"{method} {path_template(path)}"
        self.requests[key] += 1
        if lag is not None:
            self.lags.append(lag)
            self.lags_by_request.setdefault(key, []).append(lag)

    async def watch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(STALL_TICK)
            stall = loop.time() - before - STALL_TICK
            if stall > self.max_stall:
                self.max_stall = stall

    def snapshot(self, app: CallApplication) -> dict[str, Any]:
        lags = sorted(self.lags)
        self.lags = []
        by_request, self.lags_by_request = self.lags_by_request, {}
        slowest = {
            key: {"count": len(v), "p99": sorted(v)[int(len(v) * 0.99)], "max": max(v)}
            for key, v in by_request.items()
        }
        stall, self.max_stall = self.max_stall, 0.0
        gc_pause, self.max_gc_pause = self.max_gc_pause, 0.0
        gc_generation, self.max_gc_generation = self.max_gc_generation, -1

        def pick(q: float) -> float | None:
            return lags[min(len(lags) - 1, int(len(lags) * q))] if lags else None

        return {
            "at": time.monotonic(),
            "cpu_s": time.process_time(),
            "rss": rss_bytes(),
            "active_calls": len(app.calls),
            "tasks": len(asyncio.all_tasks()),
            "lag_count": len(lags),
            "lag_p50": pick(0.5),
            "lag_p99": pick(0.99),
            "lag_max": lags[-1] if lags else None,
            "lag_by_request": slowest,
            "max_stall": stall,
            "max_gc_pause": gc_pause,
            "max_gc_generation": gc_generation,
            "requests": dict(self.requests),
        }

    def instrument(self, app: CallApplication) -> None:
        """Time the resync after each reconnect (instance attributes shadow the methods the
        ARI client and the app look up at call time)."""
        on_connected, resync = app.on_connected, app.resync

        async def timed_on_connected(reconnected: bool) -> None:
            if reconnected:
                self.reconnected_at = time.monotonic()
                self.requests_at_reconnect = Counter(self.requests)
            await on_connected(reconnected)

        async def timed_resync() -> None:
            started = time.monotonic()
            calls_before = len(app.calls)
            await resync()
            done = time.monotonic()
            sent = Counter(self.requests)
            sent.subtract(self.requests_at_reconnect)
            self.resync = {
                "reconnected_at": self.reconnected_at,
                "started_at": started,
                "done_at": done,
                "calls_before": calls_before,
                "requests_since_reconnect": {k: v for k, v in sent.items() if v > 0},
                "resyncs": app.resyncs,
            }

        app.on_connected = timed_on_connected  # type: ignore[method-assign]
        app.resync = timed_resync  # type: ignore[method-assign]


def memory_growth(mark: tracemalloc.Snapshot | None, top: int = 15) -> list[str]:
    """Where memory grew since ``mark``: the biggest differences by allocating line."""
    if mark is None:
        return ["start the daemon with --tracemalloc and send memmark first"]
    gc.collect()
    stats = tracemalloc.take_snapshot().compare_to(mark, "lineno")
    return [str(stat) for stat in stats[:top]]


def reply(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


async def serve(args: argparse.Namespace) -> None:
    config = load_config(args.config, os.environ)
    daemon = Daemon(
        config,
        data_dir=args.data_dir,
        database=Database(args.database_url, None),
        node="load-node",
    )
    probe = Probe()
    await daemon.start()
    assert daemon.app is not None and daemon.client is not None
    daemon.client.rest.observer = probe.observe
    probe.instrument(daemon.app)
    await daemon.wait_connected(30)
    watcher = asyncio.create_task(probe.watch_loop())
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    memory_mark: tracemalloc.Snapshot | None = None
    reply({"ready": True, **probe.snapshot(daemon.app)})
    try:
        while line := (await reader.readline()).decode().strip():
            if line == "snap":
                reply(probe.snapshot(daemon.app))
            elif line == "calls":
                reply({"calls": sorted(daemon.app.calls)})
            elif line == "resync":
                reply(probe.resync)
            elif line == "memmark":
                # Baseline for "memtop" (needs --tracemalloc).
                gc.collect()
                memory_mark = tracemalloc.take_snapshot() if tracemalloc.is_tracing() else None
                reply({"marked": memory_mark is not None})
            elif line == "memtop":
                reply({"growth": memory_growth(memory_mark)})
            elif line == "flush":
                if daemon.writer is not None:
                    await daemon.writer.flush()
                reply({"flushed": True})
            elif line == "quit":
                break
            else:
                reply({"error": f"unknown command {line!r}"})
    finally:
        watcher.cancel()
        await daemon.stop()
    reply({"stopped": True})


def main() -> None:
    parser = argparse.ArgumentParser(description="the daemon with load probes (see rig.py)")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--tracemalloc", action="store_true", help="for memmark/memtop (slow)")
    args = parser.parse_args()
    if args.tracemalloc:
        tracemalloc.start(4)
    logging.basicConfig(level=args.log_level, stream=sys.stderr)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
