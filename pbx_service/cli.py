"""`pbx-service`: the command line. The only module that reads argv and the environment."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pbx_service.config import Config, ConfigError, load_config
from pbx_service.errors import PbxError

log = logging.getLogger("pbx_service")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = args.log_level or ("INFO" if args.command == "run" else "WARNING")
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args) or 0)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except PbxError as exc:
        print(f"error [{exc.error_id}]: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pbx-service",
        description="One virtual line for all published numbers, on Asterisk ARI.",
    )
    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="default: INFO for run, WARNING for the other commands",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the daemon against Asterisk")
    run.add_argument("--config", "-c", required=True, type=Path, help="YAML config file")
    run.set_defaults(handler=cmd_run)

    demo = sub.add_parser(
        "demo", help="simulator + daemon + embedded PostgreSQL, three scripted calls"
    )
    demo.add_argument(
        "--time-scale",
        type=float,
        default=0.25,
        help="simulated time per real second (1.0 = real time)",
    )
    demo.set_defaults(handler=cmd_demo)

    calls = sub.add_parser("calls", help="print the call log")
    calls.add_argument("--config", "-c", type=Path, help="YAML config (for the database)")
    calls.add_argument("--format", choices=["table", "json", "csv"], default="table")
    calls.add_argument("--since", help="ISO date/time, or a span such as 24h or 7d")
    calls.set_defaults(handler=cmd_calls)

    cb = sub.add_parser("callbacks", help="the callback queue: list, claim, done, release")
    cb_sub = cb.add_subparsers(dest="callbacks_command", required=True)
    cb_list = cb_sub.add_parser("list", help="open and claimed tasks (or --status)")
    cb_list.add_argument("--status", help="open, claimed, done, no_answer, ... or all")
    cb_claim = cb_sub.add_parser("claim", help="take the most urgent due task (or --task)")
    cb_claim.add_argument("--agent", required=True, help="who is calling back")
    cb_claim.add_argument("--task", help="a task id instead of the most urgent")
    cb_done = cb_sub.add_parser("done", help="record how a callback ended")
    cb_done.add_argument("task")
    cb_done.add_argument("--agent", required=True)
    cb_done.add_argument(
        "--result", default="done", choices=["done", "no_answer", "wrong_number", "cancelled"]
    )
    cb_done.add_argument("--notes")
    cb_done.add_argument("--force", action="store_true", help="even if another agent holds it")
    cb_release = cb_sub.add_parser("release", help="put a claimed task back in the queue")
    cb_release.add_argument("task")
    cb_release.add_argument("--agent")
    for p in (cb_list, cb_claim, cb_done, cb_release):
        p.add_argument("--config", "-c", type=Path, help="YAML config (for the database)")
        p.add_argument("--format", choices=["table", "json", "csv"], default="table")
        p.set_defaults(handler=cmd_callbacks)

    contacts = sub.add_parser("contacts", help="the known-customers directory")
    contacts_sub = contacts.add_subparsers(dest="contacts_command", required=True)
    imp = contacts_sub.add_parser("import", help="import a CRM CSV export (one transaction)")
    imp.add_argument("file", type=Path)
    imp.add_argument(
        "--map",
        help="column mapping, e.g. 'name=ФИО,company=Компания,tier=Категория,"
        "phones=Телефон;Мобильный,manager=Менеджер,id=ID' (default: detect from headers)",
    )
    imp.add_argument("--dry-run", action="store_true", help="check and report, write nothing")
    imp.add_argument("--replace", action="store_true", help="numbers move to the file's owner")
    imp.add_argument("--region", default="RU", help="country for numbers without +code")
    imp.add_argument("--encoding", help="default: detect (UTF-8, cp1251, UTF-16)")
    imp.add_argument("--delimiter", help="default: detect (',', ';', tab)")
    imp.add_argument("--config", "-c", type=Path, help="YAML config (for the database)")
    imp.set_defaults(handler=cmd_contacts_import)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="create or migrate the schema to the latest version")
    up.add_argument("--config", "-c", type=Path, help="YAML config (for the database)")
    up.set_defaults(handler=cmd_db_upgrade)

    hours = sub.add_parser("hours", help="open or closed at a time, and the next opening")
    hours.add_argument("--config", "-c", required=True, type=Path)
    hours.add_argument(
        "--at", default="now", help='"YYYY-MM-DD HH:MM" on each schedule\'s clock, ISO, or now'
    )
    hours.set_defaults(handler=cmd_hours)

    prompts = sub.add_parser("prompts", help="voice prompts: build and check")
    prompts_sub = prompts.add_subparsers(dest="prompts_command", required=True)
    build = prompts_sub.add_parser(
        "build",
        help="convert recordings (wav/mp3/ogg/flac) to what Asterisk plays; speak missing ones",
    )
    build.add_argument("--source", type=Path, help="folder with <lang>/<name>.<ext> sources")
    build.add_argument("--out", type=Path, help="output folder (default: ivr_prompts/)")
    build.add_argument("--lang", action="append", help="only this language (repeatable)")
    build.add_argument("--no-espeak", action="store_true", help="do not speak missing prompts")
    build.set_defaults(handler=cmd_prompts_build)
    pcheck = prompts_sub.add_parser("check", help="list missing or invalid prompts")
    pcheck.add_argument("--config", "-c", type=Path, help="check the prompts this config uses")
    pcheck.add_argument("--dir", type=Path, help="prompts folder (default: ivr_prompts/)")
    pcheck.set_defaults(handler=cmd_prompts_check)

    cfg = sub.add_parser("config", help="configuration tools")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True)
    check = cfg_sub.add_parser("check", help="validate a config file and exit")
    check.add_argument("file", type=Path)
    check.set_defaults(handler=cmd_config_check)
    return parser


def _load(path: Path) -> Config:
    return load_config(path, os.environ)


def _load_optional(path: Path | None) -> Config | None:
    return _load(path) if path is not None else None


def cmd_config_check(args: argparse.Namespace) -> int:
    config = _load(args.file)
    print(
        f"{args.file}: OK — {len(config.lines)} published number(s), "
        f"{len(config.teams)} team(s), ARI {config.ari.url} app {config.ari.app}"
    )
    return 0


def cmd_hours(args: argparse.Namespace) -> int:
    from pbx_service.calls.hours import business_hours
    from pbx_service.ops.hours_report import render_hours_at

    config = _load(args.config)
    if not config.schedules:
        print(f"{args.config}: no schedules: defined, so every line is always open")
        return 0
    print(render_hours_at(business_hours(config.schedules), args.at))
    return 0


def cmd_prompts_build(args: argparse.Namespace) -> int:
    from pbx_service.audio import build_prompts, render_build_report, shipped_prompts_dir

    out = args.out or shipped_prompts_dir()
    report = build_prompts(args.source or out, out, langs=args.lang, espeak=not args.no_espeak)
    print(render_build_report(report))
    return 1 if report.failed else 0


def cmd_prompts_check(args: argparse.Namespace) -> int:
    from pbx_service.audio import (
        REQUIRED_PROMPTS,
        SHIPPED_LANGS,
        check_prompts,
        render_problems,
        shipped_prompts_dir,
    )

    config = _load_optional(args.config)
    if config is not None:
        folder = args.dir or config.prompts_dir or shipped_prompts_dir()
        problems = check_prompts(folder, config.languages(), config.prompt_names())
    else:
        folder = args.dir or shipped_prompts_dir()
        problems = check_prompts(folder, SHIPPED_LANGS, REQUIRED_PROMPTS)
    print(render_problems(problems) if problems else f"{folder}: all prompts present and valid")
    return 1 if problems else 0


def cmd_run(args: argparse.Namespace) -> int:
    from pbx_service.daemon import Daemon

    config = _load(args.config)
    logging.getLogger().setLevel(config.log_level)

    async def serve() -> None:
        daemon = Daemon(config)
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        await daemon.start()
        serve_task = asyncio.create_task(daemon.serve(), name="daemon")
        stop_task = asyncio.create_task(stopping.wait(), name="signals")
        died = False
        try:
            await asyncio.wait({serve_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
            died = serve_task.done()
        finally:
            stop_task.cancel()
            serve_task.cancel()
            await daemon.stop()
        if died:
            serve_task.result()  # re-raise why the daemon died

    asyncio.run(serve())
    return 0


async def _database_url(config: Config | None) -> tuple[str, object]:
    from pbx_service.daemon import Database, default_data_dir

    if config is None:
        config = Config.model_validate(
            {
                "lines": [{"did": "0000", "label": "none"}],
                "teams": {"reception": {"members": ["PJSIP/none"]}},
                "database": {"url": os.environ.get("DATABASE_URL") or None},
            }
        )
    data_dir = config.storage.data_dir or default_data_dir()
    database = await Database.open(config, data_dir)
    return database.url, database


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from pbx_service.store.migrate import upgrade

    async def go() -> None:
        url, database = await _database_url(_load_optional(args.config))
        try:
            await upgrade(url)
        finally:
            await database.close()  # type: ignore[attr-defined]

    asyncio.run(go())
    print("database schema is up to date")
    return 0


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """`--since`: an ISO date/time (UTC when no offset) or a span back from now (90m, 24h, 7d)."""
    if not text:
        return None
    now = now or datetime.now(UTC)
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if text[-1:] in units and text[:-1].isdigit():
        return now - timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise PbxError(
            f"--since {text!r}: use an ISO date/time such as 2026-11-25T09:00 or a span "
            "such as 90m, 24h, 7d"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def cmd_calls(args: argparse.Namespace) -> int:
    from pbx_service.ops.calllog import render_calls
    from pbx_service.store.migrate import upgrade
    from pbx_service.store.queries import list_calls

    since = parse_since(args.since)

    async def go() -> str:
        url, database = await _database_url(_load_optional(args.config))
        try:
            await upgrade(url)
            rows = await list_calls(url, since=since)
        finally:
            await database.close()  # type: ignore[attr-defined]
        return render_calls(rows, args.format)

    print(asyncio.run(go()))
    return 0


def cmd_callbacks(args: argparse.Namespace) -> int:
    from pbx_service.ops import callbacks_report as report
    from pbx_service.store.migrate import upgrade

    async def go() -> tuple[str, int]:
        url, database = await _database_url(_load_optional(args.config))
        try:
            await upgrade(url)
            command = args.callbacks_command
            if command == "list":
                return await report.cli_list(url, args.format, args.status)
            if command == "claim":
                return await report.cli_claim(url, args.agent, args.task, args.format)
            if command == "done":
                return await report.cli_done(
                    url,
                    args.task,
                    args.agent,
                    args.result,
                    args.notes,
                    args.format,
                    force=args.force,
                )
            return await report.cli_release(url, args.task, args.agent)
        finally:
            await database.close()  # type: ignore[attr-defined]

    text, code = asyncio.run(go())
    if text:
        print(text)
    return code


def cmd_contacts_import(args: argparse.Namespace) -> int:
    from pbx_service.contacts import ColumnMapping, import_contacts
    from pbx_service.store.migrate import upgrade

    mapping = ColumnMapping.parse(args.map) if args.map else None

    async def go() -> int:
        url, database = await _database_url(_load_optional(args.config))
        try:
            await upgrade(url)
            report = await import_contacts(
                url,
                args.file,
                mapping,
                default_region=args.region,
                dry_run=args.dry_run,
                replace=args.replace,
                encoding=args.encoding,
                delimiter=args.delimiter,
            )
        finally:
            await database.close()  # type: ignore[attr-defined]
        print(report.render())
        return 1 if report.skipped else 0

    return asyncio.run(go())


def cmd_demo(args: argparse.Namespace) -> int:
    from pbx_service.ops.demo import run_demo

    return asyncio.run(run_demo(time_scale=args.time_scale))


if __name__ == "__main__":
    raise SystemExit(main())
