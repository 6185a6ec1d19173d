"""`python -m pbx_service.simulator --port 8088`: run the ARI simulator until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import pathlib

from pbx_service.simulator import PhoneBehaviour, Simulator


def _sound_dir(text: str) -> tuple[str, pathlib.Path]:
    prefix, sep, path = text.partition("=")
    return (prefix, pathlib.Path(path)) if sep else ("", pathlib.Path(text))


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve."""
    parser = argparse.ArgumentParser(
        prog="python -m pbx_service.simulator",
        description="ARI simulator behaving like Asterisk 22",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8088)
    parser.add_argument("--username", default="pbx-service")
    parser.add_argument("--password", default="secret")
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--recordings-dir", type=pathlib.Path, default=None)
    parser.add_argument(
        "--sound-dir",
        action="append",
        type=_sound_dir,
        default=None,
        help="[PREFIX=]DIR laid out as DIR/<lang>/NAME.wav (repeatable)",
    )
    parser.add_argument(
        "--fallback-endpoint",
        action="append",
        default=[],
        help="reception endpoint rung when pbx-service is down (repeatable)",
    )
    parser.add_argument(
        "--phone",
        action="append",
        default=[],
        help="ENDPOINT[=ANSWER_AFTER|never|busy|offline] (repeatable)",
    )
    parser.add_argument(
        "--request-log-limit",
        type=int,
        default=None,
        help="keep only about this many latest REST requests in /_sim/requests (long runs)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    asyncio.run(_serve(args))


def _behaviour(spec: str) -> PhoneBehaviour:
    if spec == "never":
        return PhoneBehaviour.never_answers()
    if spec == "busy":
        return PhoneBehaviour.rejects_busy()
    if spec == "offline":
        return PhoneBehaviour.offline()
    return PhoneBehaviour.answers(float(spec) if spec else 1.0)


async def _serve(args: argparse.Namespace) -> None:
    sim = Simulator(
        username=args.username,
        password=args.password,
        sound_dirs=args.sound_dir,
        recordings_dir=args.recordings_dir,
        time_scale=args.time_scale,
        fallback_endpoints=args.fallback_endpoint,
        request_log_limit=args.request_log_limit,
    )
    for spec in args.phone:
        endpoint, _, behaviour = spec.partition("=")
        sim.add_phone(endpoint, _behaviour(behaviour))
    await sim.start(args.host, args.port)
    print(f"ARI simulator at {sim.base_url} (control: {sim.control_url})", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        with contextlib.suppress(Exception):
            await sim.stop()


if __name__ == "__main__":
    main()
