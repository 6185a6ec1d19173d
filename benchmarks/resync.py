"""Resync burst: with 1,000 live calls (talking to agents, or waiting in a queue with music),
the daemon's events WebSocket is dropped; while it is down, some callers hang up (events the
daemon never sees); then the socket is restored. Measured:

* requests the daemon used to rebuild its state after the reconnect (target: 2, one
  ``GET /channels`` and one ``GET /bridges``);
* time from the socket being back to the state being rebuilt (target: <= 1 s), and until the
  daemon's live calls are exactly the calls still up;
* calls left in a wrong state (target: 0): the daemon still holding a call that hung up in the
  gap, or no longer holding one that is up; after the run, lost calls in the call log (0).

Only the WebSocket is cut (`pbx_service.simulator.proxy.TcpProxy.cut_events`); REST still
flows, as when Asterisk drops one slow client.

    python benchmarks/resync.py                 # 1,000 calls (about 3 minutes)
    python benchmarks/resync.py --calls 200     # smaller
    PBX_BENCH_ARI_URL=http://pbx:8088 PBX_BENCH_ARI_PASSWORD=... python benchmarks/resync.py
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from typing import Any

from rig import Mix, Rig, argument_parser, ms, print_targets, rig


async def daemon_calls(bench: Rig) -> set[str]:
    return set((await bench.daemon.ask("calls"))["calls"])


def expected_calls(bench: Rig) -> set[str]:
    """The daemon-side halves of the callers still up."""
    return {call.peer_id for call in bench.callers.live.values() if not call.ended.done()}


async def burst(bench: Rig, args: argparse.Namespace) -> dict[str, Any]:
    callers = bench.callers
    assert bench.proxy is not None
    started = time.monotonic()
    await callers.pace(args.rate, 0, args.calls)
    print(
        f"  {callers.active} calls up in {time.monotonic() - started:.0f} s; settling", flush=True
    )
    await asyncio.sleep(args.settle)
    before = await daemon_calls(bench)
    mismatch_before = len(before ^ expected_calls(bench))
    resyncs_before = (await bench.daemon.ask("resync")).get("resyncs", 0)

    bench.proxy.cut_events()
    cut_at = time.monotonic()
    victims = random.Random(7).sample(list(callers.live.values()), args.hangups)
    rest = bench.driver.client.rest
    for call in victims:
        await rest.hangup(call.channel_id)
    await asyncio.gather(*(asyncio.shield(c.ended) for c in victims), return_exceptions=True)
    await asyncio.sleep(max(0.0, args.gap - (time.monotonic() - cut_at)))
    bench.proxy.restore()
    restored_at = time.monotonic()
    print(f"  socket cut for {restored_at - cut_at:.1f} s; {len(victims)} callers hung up in "
          "the gap", flush=True)  # fmt: skip

    figures: dict[str, Any] = {}
    deadline = restored_at + 30
    while time.monotonic() < deadline:
        figures = await bench.daemon.ask("resync")
        if figures.get("resyncs", 0) > resyncs_before:
            break
        await asyncio.sleep(0.02)
    else:
        raise SystemExit("the daemon did not resync within 30 s of the socket coming back")
    expected = expected_calls(bench)
    converged_at: float | None = None
    wrong: set[str] = set()
    while time.monotonic() < figures["done_at"] + 5:
        wrong = await daemon_calls(bench) ^ expected
        if not wrong:
            converged_at = time.monotonic()
            break
        await asyncio.sleep(0.02)
    requests = figures["requests_since_reconnect"]
    return {
        "calls_before": len(before),
        "mismatch_before": mismatch_before,
        "hung_up_in_gap": len(victims),
        "gap_s": restored_at - cut_at,
        "rebuild_s": figures["done_at"] - figures["reconnected_at"],
        "reconnect_after_restore_s": figures["reconnected_at"] - restored_at,
        "converged_s": converged_at - figures["reconnected_at"] if converged_at else None,
        "gets": {k: v for k, v in requests.items() if k.startswith("GET ") and "ping" not in k},
        "other_requests": {k: v for k, v in requests.items() if not k.startswith("GET ")},
        "wrong": len(wrong),
        "still_up": len(expected),
    }


async def run(args: argparse.Namespace) -> int:
    # Everyone wants an agent and talks for long: stable states while the socket is down.
    mix = Mix(agent_share=1.0, voicemail_share=0.0, talk=(3600.0, 3600.0))
    async with rig(
        agents_per_team=args.agents, mix=mix, proxy_events=True, max_wait=3600.0
    ) as bench:
        for line in bench.describe():
            print(line)
        waiting = max(args.calls - 2 * args.agents, 0)
        print(f"{args.calls} calls, {2 * args.agents} agents: ~{waiting} callers wait in queues")
        result = await burst(bench, args)
        summary, _ = await bench.finish()

    gets = result["gets"]
    print(f"\nLive calls before the cut: {result['calls_before']} (daemon vs callers differ "
          f"by {result['mismatch_before']}); hung up during the {result['gap_s']:.1f} s gap: "
          f"{result['hung_up_in_gap']}; still up after: {result['still_up']}")  # fmt: skip
    print(f"Socket back {ms(result['reconnect_after_restore_s'])} ms after the restore; state "
          f"rebuilt in {ms(result['rebuild_s'])} ms; daemon's calls = calls up after "
          f"{ms(result['converged_s'])} ms")  # fmt: skip
    print(f"Requests to rebuild: {sum(gets.values())} ({gets}); other requests since the "
          f"reconnect: {result['other_requests'] or 'none'}")  # fmt: skip
    print(f"Call log: {summary['total']} calls, in progress {summary['in_progress']}, lost "
          f"{summary['lost']}")  # fmt: skip
    print("\nTargets:")
    targets = [
        (sum(gets.values()) == 2, f"requests to rebuild state = 2: {sum(gets.values())}"),
        (result["rebuild_s"] <= 1.0, f"state rebuilt <= 1 s: {ms(result['rebuild_s'])} ms"),
        (result["converged_s"] is not None and result["converged_s"] <= 1.0,
         f"(stricter) daemon's calls = calls up <= 1 s: {ms(result['converged_s'])} ms"),
        (result["wrong"] == 0, f"calls left in a wrong state = 0: {result['wrong']}"),
        (summary["lost"] == 0 and summary["in_progress"] == 0,
         f"0 lost calls afterwards: {summary['lost']} lost, {summary['in_progress']} not ended"),
    ]  # fmt: skip
    print_targets(targets)
    return 0


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--calls", type=int, default=1000, help="live calls when the cut comes")
    parser.add_argument("--agents", type=int, default=400, help="agents per queue (2 queues)")
    parser.add_argument("--hangups", type=int, default=100, help="callers hanging up in the gap")
    parser.add_argument("--gap", type=float, default=2.0, help="seconds the socket stays down")
    parser.add_argument("--rate", type=float, default=25.0, help="new calls per second")
    parser.add_argument("--settle", type=float, default=10.0)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
