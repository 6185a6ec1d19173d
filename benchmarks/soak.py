"""Memory over time: many short calls through the real daemon (the same mix as `load.py`:
menu -> queue -> agent -> talk; voicemail; abandon), the daemon's RSS sampled as they go.
After a warm-up its RSS must come back within 5 % of its level at the end of the warm-up
(no per-call leak): the same number of live calls, compared at the same point of the load.

    python benchmarks/soak.py                    # 1,000,000 calls: hours on 2 cores
    python benchmarks/soak.py --calls 20000      # the run in docs/benchmarks.md
    python benchmarks/soak.py --quick            # 2,000 calls (CI-sized, a few minutes)

Prompts run 20x faster than real time in the simulator (``--time-scale``) so calls are short;
against a real Asterisk (PBX_BENCH_ARI_URL) they play at their real length.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from rig import Mix, argument_parser, cpu_seconds, print_targets, rig, rss_bytes

TARGET_DRIFT = 0.05


async def run(args: argparse.Namespace) -> int:
    mix = Mix(
        talk=(1.0, 3.0), voicemail_talk=(1.0, 2.0), patience=(0.5, 2.0), agent_answers_after=0.2
    )
    async with rig(
        agents_per_team=args.agents,
        mix=mix,
        time_scale=args.time_scale,
        max_wait=60.0,
        caller_pool=args.callers,
        trace_memory=args.trace_memory,
    ) as bench:
        for line in bench.describe():
            print(line)
        callers = bench.callers
        pid = bench.daemon.pid
        warm_up = args.warm_up or max(args.calls // 10, min(args.calls, 1000))
        print(f"{args.calls:,} calls from {args.callers:,} numbers, {args.concurrent} at a time, "
              f"up to {args.rate:g} new/s; "
              f"warm-up {warm_up:,} calls; RSS sampled every {args.sample_every:,} calls",
              flush=True)  # fmt: skip
        samples: list[tuple[int, float, int]] = []
        started = time.monotonic()
        idle_rss = rss_bytes(pid)
        next_sample = args.sample_every
        warm_rss: int | None = None
        while callers.placed < args.calls:
            await callers.pace(args.rate, time.monotonic() + 0.5, args.concurrent)
            if warm_rss is None and callers.placed >= warm_up:
                warm_rss = rss_bytes(pid)
                if args.trace_memory:
                    await bench.daemon.ask("memmark")
                print(f"  warmed up after {callers.placed:,} calls: RSS "
                      f"{warm_rss / 2**20:.1f} MiB", flush=True)  # fmt: skip
            if callers.placed >= next_sample:
                next_sample += args.sample_every
                await bench.snap()  # also empties the probe's latency samples
                rss = rss_bytes(pid)
                samples.append((callers.placed, time.monotonic() - started, rss))
                print(f"  {callers.placed:>9,} calls  {time.monotonic() - started:7.0f} s  "
                      f"RSS {rss / 2**20:7.1f} MiB  live {callers.active}  daemon CPU "
                      f"{cpu_seconds(pid):.0f} s", flush=True)  # fmt: skip
        under_load_rss = rss_bytes(pid)
        if args.trace_memory:
            print("  memory growth since the warm-up, by line:")
            for line in (await bench.daemon.ask("memtop"))["growth"]:
                print(f"    {line}")
        elapsed = time.monotonic() - started
        summary, _ = await bench.finish(hang_up=False)
        await asyncio.sleep(2)
        end_idle_rss = rss_bytes(pid)
        cpu = cpu_seconds(pid)

    assert warm_rss is not None
    drift = under_load_rss / warm_rss - 1
    peak = max([rss for _, _, rss in samples] + [under_load_rss])
    print(
        f"\nRun: {callers.placed:,} calls in {elapsed:.0f} s ({callers.placed / elapsed:.1f} "
        f"calls/s), daemon CPU {cpu:.0f} s ({cpu / callers.placed * 1000:.1f} ms per call)"
    )
    print(
        f"Daemon RSS: idle before {idle_rss / 2**20:.1f} MiB; after warm-up "
        f"{warm_rss / 2**20:.1f} MiB; peak {peak / 2**20:.1f} MiB; at the end under load "
        f"{under_load_rss / 2**20:.1f} MiB; idle after {end_idle_rss / 2**20:.1f} MiB"
    )
    print(f"Call log: {summary['total']:,} calls, in progress {summary['in_progress']}, lost "
          f"{summary['lost']}; callers whose script failed: {callers.failed_scripts}")  # fmt: skip
    print("\nTargets:")
    targets = [
        (abs(drift) <= TARGET_DRIFT,
         f"RSS within 5% of its level after warm-up (at the end, under the same load): "
         f"{drift:+.1%}"),
        (summary["lost"] == 0 and summary["in_progress"] == 0,
         f"0 lost calls: {summary['lost']} lost, {summary['in_progress']} not ended"),
    ]  # fmt: skip
    print_targets(targets)
    return 0


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--concurrent", type=int, default=100)
    parser.add_argument("--rate", type=float, default=40.0, help="new calls per second, at most")
    parser.add_argument("--agents", type=int, default=60, help="agents per queue (2 queues)")
    parser.add_argument("--time-scale", type=float, default=0.05, help="simulated media speed")
    parser.add_argument("--sample-every", type=int, default=0, help="calls between samples")
    parser.add_argument(
        "--callers", type=int, default=5000, help="distinct caller numbers (they call again)"
    )
    parser.add_argument(
        "--warm-up", type=int, default=0, help="calls before the reference RSS (default: 10%%)"
    )
    parser.add_argument(
        "--trace-memory", action="store_true", help="tracemalloc in the daemon: where it grew"
    )
    parser.add_argument("--quick", action="store_true", help="2,000 calls")
    args = parser.parse_args()
    if args.quick:
        args.calls = 2_000
    if not args.sample_every:
        args.sample_every = max(args.calls // 20, 100)
    raise SystemExit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
