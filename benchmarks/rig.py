"""What the full-flow benchmarks (`load.py`, `resync.py`, `soak.py`) share: a PostgreSQL, an
ARI server, the real daemon in a process of its own with probes (`load_daemon.py`), and the
callers and agents, played over ARI by `CallerDriver` in the benchmark's own process.

The ARI server is the simulator, started in its own process, unless ``PBX_BENCH_ARI_URL`` names
a real Asterisk (``PBX_BENCH_ARI_USER``, ``PBX_BENCH_ARI_PASSWORD``; its dialplan needs
``dialplan/test_contexts.conf``, as the e2e suite). The database is a scratch database on
``$DATABASE_URL``'s server (created, dropped afterwards; needs CREATEDB) or an embedded
PostgreSQL (pgserver) in a temporary directory. So each of the four (daemon, ARI server,
callers, PostgreSQL) has its own process and its CPU is measured apart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import yaml
from sqlalchemy.engine import make_url

from pbx_service.ari import AriClient
from pbx_service.simulator.driver import (
    AgentBehaviour,
    CallerDriver,
    DrivenCall,
    DriverError,
    Hangup,
    Press,
    Step,
    Wait,
    WaitBridged,
    WaitPlayback,
)
from pbx_service.simulator.proxy import TcpProxy
from pbx_service.store.embedded import EmbeddedPostgres, asyncpg_dsn, normalize_database_url
from pbx_service.store.migrate import upgrade
from pbx_service.store.queries import call_summary

REPO = Path(__file__).resolve().parents[1]
SIM_USER = "pbx-service"
SIM_PASSWORD = "bench-secret"
DIDS = ("84952223344", "84952223345", "84952223346", "84951110000")
TEAM_KEYS = {"sales": "1", "support": "2"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def machine() -> str:
    """What the figures were measured on."""
    model = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


# -- processes ----------------------------------------------------------------------------------


class ChildProcess:
    """A child speaking one JSON line per command on stdin/stdout."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str, log_path: Path) -> None:
        self.proc = proc
        self.name = name
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def line(self, timeout: float = 60.0) -> str:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not raw:
            status = await self.proc.wait()
            tail = self.log_path.read_text(errors="replace").splitlines()[-30:]
            ending = "\n".join(tail)
            raise RuntimeError(f"{self.name} exited (status {status}); its log ends:\n{ending}")
        return raw.decode()

    async def ask(self, command: str, timeout: float = 60.0) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()
        data: dict[str, Any] = json.loads(await self.line(timeout))
        return data

    async def stop(self, command: str | None = None, timeout: float = 60.0) -> None:
        if self.proc.returncode is None and command is not None:
            with contextlib.suppress(Exception):
                await self.ask(command, timeout)
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 10)
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


async def start_simulator(log_path: Path, time_scale: float) -> tuple[ChildProcess, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pbx_service.simulator", "--port", "0",
        "--username", SIM_USER, "--password", SIM_PASSWORD,
        "--time-scale", str(time_scale),
        "--sound-dir", f"pbx={REPO / 'ivr_prompts'}",
        "--recordings-dir", str(log_path.parent / "sim-recordings"),
        "--request-log-limit", "2000",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=log_path.open("wb"),
    )  # fmt: skip
    child = ChildProcess(proc, "the simulator", log_path)
    banner = await child.line(30)
    found = re.search(r"(http://\S+/ari)", banner)
    if found is None:
        raise RuntimeError(f"unexpected simulator banner: {banner!r}")
    return child, found.group(1)


async def start_daemon(
    config_path: Path,
    database_url: str,
    data_dir: Path,
    log_path: Path,
    password: str,
    trace_memory: bool = False,
) -> tuple[ChildProcess, dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(REPO / "benchmarks" / "load_daemon.py"),
        "--config", str(config_path), "--database-url", database_url,
        "--data-dir", str(data_dir), *(["--tracemalloc"] if trace_memory else []),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**24,
        stderr=log_path.open("wb"), env={**os.environ, "PBX_ARI_PASSWORD": password},
    )  # fmt: skip
    child = ChildProcess(proc, "the daemon", log_path)
    ready: dict[str, Any] = json.loads(await child.line(120))
    return child, ready


# -- the database -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def database(tmp: Path) -> AsyncIterator[tuple[str, str]]:
    """(url, where): a scratch database on $DATABASE_URL's server, or an embedded one."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        embedded = EmbeddedPostgres()
        url = await asyncio.to_thread(embedded.start, tmp / "pg")
        try:
            await upgrade(url)
            yield url, "embedded PostgreSQL (pgserver), fresh data directory"
        finally:
            await asyncio.to_thread(embedded.stop)
        return
    url = normalize_database_url(url)
    name = f"pbx_load_{os.getpid()}"
    admin = await asyncpg.connect(asyncpg_dsn(url))
    try:
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.PostgresError as exc:
            raise SystemExit(
                f"cannot create the scratch database {name} ({exc}); the DATABASE_URL user "
                "needs CREATEDB, or unset DATABASE_URL to use an embedded PostgreSQL"
            ) from exc
        scratch = make_url(url).set(database=name).render_as_string(False)
        try:
            await upgrade(scratch)
            yield scratch, f"DATABASE_URL server, scratch database {name} (dropped afterwards)"
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


# -- the daemon's configuration -------------------------------------------------------------------


def daemon_config(
    ari_url: str, user: str, agent_dial_strings: dict[str, list[str]], max_wait: float
) -> dict[str, Any]:
    """Four published numbers, a menu (1 sales, 2 support, 8 voicemail), two queues."""
    teams = {
        name: {
            "members": members,
            "strategy": "longest_idle",
            "ring_timeout": 15,
            "max_wait": max_wait,
            "wrap_up": 2,
            "announce_position_every": 30,
            "overflow": {"voicemail": "general"},
        }
        for name, members in agent_dial_strings.items()
    }
    reception = next(iter(agent_dial_strings.values()))[:5]
    return {
        "ari": {
            "url": ari_url,
            "username": user,
            "ping_interval": 5.0,
            "ping_timeout": 5.0,
            "reconnect_max_delay": 0.5,
        },
        "language": "ru",
        "lines": [{"did": did, "label": f"line {n}"} for n, did in enumerate(DIDS, 1)],
        "teams": {"reception": {"members": reception, "ring_timeout": 15}, **teams},
        "voicemail_boxes": ["general"],
        "flow": {"voicemail": {"max_seconds": 120, "max_silence_seconds": 0}},
        "ivr": {
            "start": "main",
            "menus": {
                "main": {
                    "prompt": "main-menu",
                    "timeout": 5,
                    "options": {
                        TEAM_KEYS["sales"]: {"team": "sales", "category": "customer"},
                        TEAM_KEYS["support"]: {"team": "support", "category": "customer"},
                        "8": {"voicemail": "general", "category": "other"},
                    },
                }
            },
        },
        "agi": {"enabled": False, "port": 0},
    }


# -- callers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mix:
    """The scripted mix of callers; durations in seconds of wall clock."""

    agent_share: float = 0.70  # menu -> queue -> agent -> talk -> hang up
    voicemail_share: float = 0.15  # menu -> voicemail -> speak -> hang up
    # the rest abandon: menu -> queue, hang up while waiting or ringing
    talk: tuple[float, float] = (150.0, 300.0)
    voicemail_talk: tuple[float, float] = (10.0, 40.0)
    patience: tuple[float, float] = (3.0, 20.0)
    agent_answers_after: float = 2.0

    def steps(self, rng: random.Random) -> tuple[str, list[Step]]:
        team_key = rng.choice(list(TEAM_KEYS.values()))
        menu: list[Step] = [WaitPlayback("main-menu", 120)]
        draw = rng.random()
        if draw < self.agent_share:
            return "agent", [
                *menu, Press(team_key), WaitBridged(600), Wait(rng.uniform(*self.talk)), Hangup(),
            ]  # fmt: skip
        if draw < self.agent_share + self.voicemail_share:
            return "voicemail", [
                *menu, Press("8"), WaitPlayback("leave-message", 120),
                Wait(rng.uniform(*self.voicemail_talk)), Hangup(),
            ]  # fmt: skip
        return "abandon", [*menu, Press(team_key), Wait(rng.uniform(*self.patience)), Hangup()]

    def mean_duration(self) -> float:
        """Rough mean call length (menu ~10 s), to size the ramp."""
        rest = 1 - self.agent_share - self.voicemail_share
        return (
            10
            + self.agent_share * (sum(self.talk) / 2 + self.agent_answers_after)
            + self.voicemail_share * (sum(self.voicemail_talk) / 2 + 5)
            + rest * sum(self.patience) / 2
        )


@dataclass
class Callers:
    """Places scripted calls through the driver and keeps count of the live ones."""

    driver: CallerDriver
    mix: Mix
    seed: int = 1
    # None: every call from a new number; N: callers drawn from N numbers (they call again).
    caller_pool: int | None = None
    placed: int = 0
    ended: int = 0
    failed_scripts: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    live: dict[str, DrivenCall] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    @property
    def active(self) -> int:
        return len(self.live)

    async def place(self) -> None:
        kind, steps = self.mix.steps(self.rng)
        pool = self.caller_pool
        number = f"+7916{self.rng.randrange(pool) if pool else self.placed:07d}"
        self.placed += 1
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        try:
            call = await self.driver.place_call(self.rng.choice(DIDS), number, steps=steps)
        except DriverError as exc:
            print(f"  ! could not place a call: {exc}", flush=True)
            self.failed_scripts += 1
            return
        self.live[call.channel_id] = call
        task = asyncio.create_task(self._follow(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow(self, call: DrivenCall) -> None:
        try:
            await call.wait_script()
        except Exception as exc:
            # A step timed out: the caller gives up (hangs up), as a real one would.
            self.failed_scripts += 1
            if self.failed_scripts <= 5:
                print(f"  ! caller script: {exc}", flush=True)
            with contextlib.suppress(Exception):
                await self.driver.client.rest.hangup(call.channel_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(call.ended), 60)
        self.live.pop(call.channel_id, None)
        self.ended += 1

    async def pace(self, rate: float, until: float, level: int) -> None:
        """Start calls at ``rate`` per second while fewer than ``level`` are live, until
        ``until`` (monotonic) or, with until == 0, until ``level`` are live."""
        interval = 1.0 / rate
        next_at = time.monotonic()
        while True:
            now = time.monotonic()
            if until and now >= until:
                return
            if not until and self.active >= level:
                return
            if self.active >= level:
                await asyncio.sleep(0.05)
                continue
            if now >= next_at:
                await self.place()
                next_at = max(next_at + interval, now - interval)
            await asyncio.sleep(max(0.0, min(next_at - time.monotonic(), 0.05)))

    async def hang_up_all(self, rate: float = 50.0) -> None:
        rest = self.driver.client.rest
        for call in list(self.live.values()):
            with contextlib.suppress(Exception):
                await rest.hangup(call.channel_id)
            await asyncio.sleep(1.0 / rate)

    async def wait_all_ended(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await asyncio.gather(
                    *(asyncio.shield(call.ended) for call in self.live.values()),
                    return_exceptions=True,
                )


# -- the rig -------------------------------------------------------------------------------------


@dataclass
class Rig:
    tmp: Path
    database_url: str
    database_where: str
    ari_url: str
    ari_user: str
    ari_password: str
    on_simulator: bool
    daemon: ChildProcess
    ready: dict[str, Any]
    driver: CallerDriver
    callers: Callers
    simulator: ChildProcess | None
    proxy: TcpProxy | None

    async def snap(self) -> dict[str, Any]:
        return await self.daemon.ask("snap")

    async def summary(self) -> dict[str, Any]:
        await self.daemon.ask("flush")
        return await call_summary(self.database_url)

    async def finish(self, hang_up: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
        """Every caller hangs up (or has), the daemon finishes every call: returns the call
        log's summary and the daemon's last snapshot (``active_calls`` 0 unless stuck)."""
        if hang_up:
            print("  all callers hang up ...", flush=True)
            await self.callers.hang_up_all()
        await self.callers.wait_all_ended(120)
        deadline = time.monotonic() + 120
        # Polls the daemon's process: nothing in this one to wait on.
        while (last := await self.snap())["active_calls"] and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.5)
        return await self.summary(), last

    def describe(self) -> list[str]:
        server = "the ARI simulator (own process)" if self.on_simulator else self.ari_url
        return [
            f"Machine: {machine()}",
            f"ARI server: {server}; PostgreSQL: {self.database_where}",
            "Processes: daemon, ARI server, callers+agents (this one), PostgreSQL",
        ]


@contextlib.asynccontextmanager
async def rig(
    *,
    agents_per_team: int,
    mix: Mix,
    time_scale: float = 1.0,
    max_wait: float = 180.0,
    proxy_events: bool = False,
    seed: int = 1,
    caller_pool: int | None = None,
    trace_memory: bool = False,
) -> AsyncIterator[Rig]:
    """Everything up and connected; torn down on exit."""
    with tempfile.TemporaryDirectory(prefix="pbx-bench-load-") as tmp_name:
        tmp = Path(tmp_name)
        async with database(tmp) as (db_url, db_where), contextlib.AsyncExitStack() as stack:
            real = os.environ.get("PBX_BENCH_ARI_URL", "").strip()
            simulator: ChildProcess | None = None
            if real:
                ari_url = real
                user = os.environ.get("PBX_BENCH_ARI_USER", SIM_USER)
                password = os.environ.get("PBX_BENCH_ARI_PASSWORD", "")
            else:
                simulator, ari_url = await start_simulator(tmp / "simulator.log", time_scale)
                stack.push_async_callback(simulator.stop)
                user, password = SIM_USER, SIM_PASSWORD
            proxy: TcpProxy | None = None
            daemon_url = ari_url
            if proxy_events:
                proxy = TcpProxy(ari_url)
                await proxy.start()
                stack.push_async_callback(proxy.stop)
                daemon_url = proxy.url
            client = await stack.enter_async_context(
                AriClient(ari_url, user, password, "caller-sim", ping_interval=5.0)
            )
            driver = CallerDriver(client, keep_history=False)
            await driver.start()
            stack.push_async_callback(driver.stop)
            members: dict[str, list[str]] = {}
            for team in TEAM_KEYS:
                behaviour = AgentBehaviour.answers(mix.agent_answers_after)
                members[team] = [
                    driver.agent(f"{team[:2]}{n:04d}", behaviour) for n in range(agents_per_team)
                ]
            config_path = tmp / "daemon.yaml"
            config_path.write_text(
                yaml.safe_dump(daemon_config(daemon_url, user, members, max_wait))
            )
            daemon, ready = await start_daemon(
                config_path, db_url, tmp / "data", tmp / "daemon.log", password, trace_memory
            )
            stack.push_async_callback(daemon.stop, "quit", 120.0)
            yield Rig(
                tmp=tmp,
                database_url=db_url,
                database_where=db_where,
                ari_url=ari_url,
                ari_user=user,
                ari_password=password,
                on_simulator=simulator is not None,
                daemon=daemon,
                ready=ready,
                driver=driver,
                callers=Callers(driver, mix, seed, caller_pool=caller_pool),
                simulator=simulator,
                proxy=proxy,
            )


def argument_parser(doc: str) -> argparse.ArgumentParser:
    """A script's parser: its docstring's first paragraph as description, the rest after."""
    return argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        epilog=doc.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def print_targets(targets: Sequence[tuple[bool, str]]) -> None:
    for ok, text in targets:
        print(f"  {'[MET]' if ok else '[MISSED]':8} {text}")


def percentile(values: Sequence[float], q: float) -> float | None:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else None
