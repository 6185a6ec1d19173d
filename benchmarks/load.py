"""Full-flow load: the real daemon against an ARI server and a real PostgreSQL, a scripted mix
of callers (menu -> queue -> agent -> talk -> hang up; voicemail; abandon) ramping through
levels of concurrent calls at a fixed rate of new calls.

Per level, after the ramp and a settling time (so the calls' ages are mixed, not all in the
menu), over a measuring window:

* event -> command: time from an event being read off the daemon's socket to the REST request
  it causes being sent (p50 / p99 / max; `pbx_service.ari.probe`);
* the longest event-loop stall (a 10 ms sleeper's lateness, in the daemon);
* daemon CPU per call: CPU seconds per call-second of live calls, times the mean call length;
* RSS per live call: (RSS now - RSS before the first call) / live calls;
* REST requests per second and per call started in the window.

After the last level every caller hangs up, the daemon finishes every call, and the call log
in PostgreSQL gives the lost calls (must be 0) and the REST requests per call over the run.

    python benchmarks/load.py                  # 50 -> 200 -> 800 -> 1,600 at 10 calls/s (~20 min)
    python benchmarks/load.py --quick          # 20 -> 60 in about 4 minutes
    PBX_BENCH_ARI_URL=http://pbx:8088 PBX_BENCH_ARI_PASSWORD=... python benchmarks/load.py

See rig.py for the processes and the real-Asterisk mode.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from rig import Mix, Rig, argument_parser, cpu_seconds, ms, print_targets, rig, rss_bytes

TARGET_P99 = 0.020
TARGET_STALL = 0.050
TARGET_CPU_DRIFT = 0.20
TARGET_RSS_PER_CALL = 50 * 1024


def request_delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}


async def idle_cpu_share(bench: Rig, seconds: float) -> float:
    """The daemon's CPU with no call (pings, housekeeping, the stall watcher itself), after
    its start-up work has settled."""
    await asyncio.sleep(5.0)
    before = await bench.snap()
    await asyncio.sleep(seconds)
    after = await bench.snap()
    return float((after["cpu_s"] - before["cpu_s"]) / (after["at"] - before["at"]))


async def measure_level(
    bench: Rig,
    level: int,
    rate: float,
    settle: float,
    window: float,
    baseline_rss: int,
    idle_share: float,
    min_starts: int,
) -> dict[str, Any]:
    callers = bench.callers
    ramp_started = time.monotonic()
    await callers.pace(rate, 0, level)
    ramp = time.monotonic() - ramp_started
    print(f"  {level}: reached in {ramp:.0f} s; settling {settle:.0f} s", flush=True)
    await callers.pace(rate, time.monotonic() + settle, level)
    # Long enough to see `min_starts` calls start (and as many end) at this level.
    window = max(window, min_starts * callers.mix.mean_duration() / level)
    start = await bench.snap()
    placed0 = callers.placed
    sim_cpu0 = cpu_seconds(bench.simulator.pid) if bench.simulator else None
    me_cpu0 = time.process_time()
    live_samples: list[int] = []
    end_at = time.monotonic() + window
    while time.monotonic() < end_at:
        await callers.pace(rate, min(end_at, time.monotonic() + 1.0), level)
        live_samples.append(callers.active)
    end = await bench.snap()
    elapsed = end["at"] - start["at"]
    cpu = end["cpu_s"] - start["cpu_s"]
    live = sum(live_samples) / len(live_samples)
    started = callers.placed - placed0
    requests = request_delta(end["requests"], start["requests"])
    total_requests = sum(requests.values())
    slow = sorted(end["lag_by_request"].items(), key=lambda kv: -kv[1]["p99"])[:4]
    result = {
        "lag_by_request": slow,
        "level": level,
        "live": live,
        "daemon_live": end["active_calls"],
        "ramp_s": ramp,
        "window_s": elapsed,
        "started": started,
        "lag_count": end["lag_count"],
        "lag_p50": end["lag_p50"],
        "lag_p99": end["lag_p99"],
        "lag_max": end["lag_max"],
        "stall": end["max_stall"],
        "gc_pause": end["max_gc_pause"],
        "gc_generation": end["max_gc_generation"],
        "cpu_share": cpu / elapsed,
        # Net of the idle floor (pings, housekeeping), so a fixed cost does not count per call.
        # Held at a level, as many calls end as start: CPU per call started is CPU per call.
        "cpu_per_call": max(cpu - idle_share * elapsed, 0.0) / started if started else None,
        "rss": end["rss"],
        "rss_per_call": (end["rss"] - baseline_rss) / max(end["active_calls"], 1),
        "requests_per_s": total_requests / elapsed,
        "requests_per_started_call": total_requests / started if started else None,
        "gets": {k: v for k, v in requests.items() if k.startswith("GET ")},
        "sim_cpu_share": (
            (cpu_seconds(bench.simulator.pid) - sim_cpu0) / elapsed
            if bench.simulator and sim_cpu0 is not None
            else None
        ),
        "callers_cpu_share": (time.process_time() - me_cpu0) / elapsed,
        "tasks": end["tasks"],
    }
    print(
        f"  {level}: live {live:.0f} (daemon {end['active_calls']}), "
        f"event->command p50 {ms(end['lag_p50'])} / p99 {ms(end['lag_p99'])} / max "
        f"{ms(end['lag_max'])} ms over {end['lag_count']} commands, stall {ms(end['max_stall'])} "
        f"ms (longest GC {ms(end['max_gc_pause'])} ms, gen {end['max_gc_generation']}), "
        f"daemon CPU {cpu / elapsed:.0%}, RSS {end['rss'] / 2**20:.0f} MiB",
        flush=True,
    )
    for key, lag in slow:
        print(f"      {key}: p99 {ms(lag['p99'])} / max {ms(lag['max'])} ms ({lag['count']})")
    return result


async def run(args: argparse.Namespace) -> int:
    mix = Mix(talk=(args.talk_min, args.talk_max))
    async with rig(agents_per_team=args.agents, mix=mix, time_scale=1.0) as bench:
        for line in bench.describe():
            print(line)
        print(
            f"Mix: {mix.agent_share:.0%} menu->queue->agent->talk ({args.talk_min:g}-"
            f"{args.talk_max:g} s), {mix.voicemail_share:.0%} voicemail, "
            f"{1 - mix.agent_share - mix.voicemail_share:.0%} abandon; "
            f"{args.agents} agents in each of 2 queues; {args.rate:g} new calls/s; "
            f"settle {args.settle:g} s, window {args.window:g} s per level",
            flush=True,
        )
        idle_share = await idle_cpu_share(bench, 20.0)
        print(f"Daemon idle (connected, no calls): CPU {idle_share:.1%}", flush=True)
        baseline = (await bench.snap())["rss"]
        daemon_pid = bench.daemon.pid
        assert rss_bytes(daemon_pid) > 0
        results = []
        run_started = time.monotonic()
        for level in args.levels:
            results.append(
                await measure_level(
                    bench,
                    level,
                    args.rate,
                    args.settle,
                    args.window,
                    baseline,
                    idle_share,
                    args.min_starts,
                )
            )
        summary, snap = await bench.finish()
        run_seconds = time.monotonic() - run_started
        final = await bench.snap()
        requests: dict[str, int] = final["requests"]
        calls = summary["total"]
        report(args, bench, results, summary, requests, calls, snap, run_seconds)
        return 0


def report(
    args: argparse.Namespace,
    bench: Rig,
    results: list[dict[str, Any]],
    summary: dict[str, Any],
    requests: dict[str, int],
    calls: int,
    last: dict[str, Any],
    run_seconds: float,
) -> None:
    print(
        f"\nRun: {run_seconds:.0f} s, {bench.callers.placed} calls placed "
        f"({', '.join(f'{k} {v}' for k, v in sorted(bench.callers.by_kind.items()))}); "
        f"callers whose script timed out (they hung up): {bench.callers.failed_scripts}"
    )
    print(
        "\n| live calls | event->command p50 / p99 / max (ms) | commands | longest stall (ms) "
        "| calls started | daemon CPU | CPU ms per call (net of idle) | RSS (MiB) "
        "| RSS per live call (KiB) "
        "| REST/s | simulator CPU | callers CPU |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        sim = f"{r['sim_cpu_share']:.0%}" if r["sim_cpu_share"] is not None else "-"
        print(
            f"| {r['live']:,.0f} | {ms(r['lag_p50'])} / {ms(r['lag_p99'])} / {ms(r['lag_max'])} "
            f"| {r['lag_count']:,} | {ms(r['stall'])} | {r['started']} | {r['cpu_share']:.0%} "
            f"| {ms(r['cpu_per_call'])} | {r['rss'] / 2**20:.0f} "
            f"| {r['rss_per_call'] / 1024:.1f} | {r['requests_per_s']:.0f} | {sim} "
            f"| {r['callers_cpu_share']:.0%} |"
        )
    total = sum(requests.values())
    # The liveness ping is per connection and second, not per call.
    gets = {k: v for k, v in requests.items() if k.startswith("GET ") and "ping" not in k}
    variable_gets = sum(v for k, v in requests.items() if k.startswith("GET ") and "variable" in k)
    print(
        f"\nREST requests over the run: {total:,} for {calls:,} calls = "
        f"{total / max(calls, 1):.1f} per call"
    )
    for key, count in sorted(requests.items(), key=lambda kv: -kv[1]):
        print(f"  {count / max(calls, 1):7.2f} per call  {key}")
    print(
        f"Call log: {calls} calls, in progress {summary['in_progress']}, lost "
        f"{summary['lost']}; outcomes: "
        + ", ".join(f"{k} {v}" for k, v in summary["by_outcome"].items() if v)
    )

    top = results[-1]
    first = results[0]
    drift = (top["cpu_per_call"] or 0) / (first["cpu_per_call"] or 1e-9) - 1
    print(f"\nTargets at {top['live']:,.0f} live calls (the top level):")
    targets = [
        (top["lag_p99"] is not None and top["lag_p99"] <= TARGET_P99,
         f"event->command p99 <= 20 ms: {ms(top['lag_p99'])} ms"),
        (top["stall"] <= TARGET_STALL, f"longest loop stall <= 50 ms: {ms(top['stall'])} ms"),
        (abs(drift) <= TARGET_CPU_DRIFT,
         f"CPU per call within +-20% of its value at {first['live']:.0f}: {drift:+.0%} "
         f"({ms(top['cpu_per_call'])} vs {ms(first['cpu_per_call'])} ms per call, net of the "
         "idle floor)"),
        (top["rss_per_call"] <= TARGET_RSS_PER_CALL,
         f"RSS <= 50 KB per live call: {top['rss_per_call'] / 1024:.1f} KiB"),
        (not gets.get("GET /channels/{id}/variable") and variable_gets == 0,
         f"no GET .../variable per call: {variable_gets}"),
        (sum(gets.values()) <= 2, f"no GET per call at all (besides a resync's 2): "
         f"{sum(gets.values())} ({gets or 'none'})"),
        (summary["lost"] == 0 and summary["in_progress"] == 0 and last["active_calls"] == 0,
         f"0 lost calls: {summary['lost']} lost, {summary['in_progress']} not ended"),
    ]  # fmt: skip
    print_targets(targets)


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--levels", default="50,200,800,1600", help="concurrent calls per step")
    parser.add_argument("--rate", type=float, default=10.0, help="new calls per second")
    parser.add_argument("--settle", type=float, default=180.0, help="seconds before measuring")
    parser.add_argument("--window", type=float, default=30.0, help="seconds measured per level")
    parser.add_argument(
        "--min-starts", type=int, default=60, help="lengthen a window to see this many calls start"
    )
    parser.add_argument("--agents", type=int, default=800, help="agents per queue (2 queues)")
    parser.add_argument("--talk-min", type=float, default=150.0)
    parser.add_argument("--talk-max", type=float, default=300.0)
    parser.add_argument("--quick", action="store_true", help="20 -> 60 calls, about 4 minutes")
    args = parser.parse_args()
    if args.quick:
        args.levels, args.settle, args.window, args.agents = "20,60", 20.0, 15.0, 40
        args.talk_min, args.talk_max = 20.0, 40.0
    args.levels = [int(x) for x in args.levels.split(",")]
    raise SystemExit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
