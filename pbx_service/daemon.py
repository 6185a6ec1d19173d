"""Wiring: builds every part from the config and supervises the background tasks.

Start order matters for "no call is lost": the database and the call-log writer come up before
the daemon connects to Asterisk, so the first call already has somewhere to be logged. Stop
order is the reverse: stop taking events, let live calls finish (bounded), flush the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import platformdirs

from pbx_service.agi.server import FastAgiServer, Handler
from pbx_service.ari import AriClient
from pbx_service.audio import check_prompts, render_problems, shipped_prompts_dir
from pbx_service.callbacks.outbound import (
    RESULT_ROUTE,
    ROUTE,
    make_outbound_result_route,
    make_outbound_route,
)
from pbx_service.callbacks.queue import DEVICE_STATE, device_state_for, due_count, release_stale
from pbx_service.calls.app import CallApplication
from pbx_service.config import Config
from pbx_service.contacts import ContactDirectory
from pbx_service.errors import PbxError
from pbx_service.notify.audio import ari_audio_fetcher
from pbx_service.notify.dispatcher import NotificationDispatcher
from pbx_service.store.embedded import EmbeddedPostgres, resolve_database_url
from pbx_service.store.migrate import upgrade
from pbx_service.store.reservations import AgentReservations
from pbx_service.store.writer import CallLogWriter

log = logging.getLogger(__name__)


class DaemonError(PbxError):
    error_id = "daemon-failed"


class PromptsMissing(DaemonError):
    error_id = "prompts-missing"


def check_configured_prompts(config: Config) -> None:
    """Refuse to start when a prompt the config names is missing: a caller would hear
    silence where the greeting should be."""
    prompts_dir = config.prompts_dir or shipped_prompts_dir()
    problems = check_prompts(prompts_dir, config.languages(), config.prompt_names())
    if problems:
        raise PromptsMissing(
            "configured prompts are missing or unusable:\n" + render_problems(problems)
        )


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("pbx-service", appauthor=False))


@dataclass
class Database:
    """The PostgreSQL the daemon uses: the configured one, or an embedded one it started."""

    url: str
    embedded: EmbeddedPostgres | None

    @classmethod
    async def open(cls, config: Config, data_dir: Path) -> Database:
        configured = config.database.url.get_secret_value() if config.database.url else None
        # Starting an embedded server blocks for about a second: keep it off the event loop.
        url, embedded = await asyncio.to_thread(resolve_database_url, configured, data_dir)
        return cls(url, embedded)

    async def close(self) -> None:
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        data_dir: Path | None = None,
        database: Database | None = None,
        node: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.data_dir = data_dir or config.storage.data_dir or default_data_dir()
        self.node = node or socket.gethostname()
        # Wall clock for business hours, rotas and call times (tests move it).
        self.clock = clock
        self._database = database
        self._own_database = database is None
        self.writer: CallLogWriter | None = None
        self.client: AriClient | None = None
        self.app: CallApplication | None = None
        self._events_task: asyncio.Task[None] | None = None
        self._housekeeping: asyncio.Task[None] | None = None
        self.agi: FastAgiServer | None = None
        self.contacts: ContactDirectory | None = None
        self.reservations: AgentReservations | None = None
        self.notifier: NotificationDispatcher | None = None

    @property
    def database(self) -> Database:
        if self._database is None:
            raise DaemonError("the daemon is not started")
        return self._database

    async def start(self) -> None:
        check_configured_prompts(self.config)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._database is None:
            self._database = await Database.open(self.config, self.data_dir)
        await upgrade(self._database.url)
        self.writer = CallLogWriter(
            self._database.url,
            self.data_dir / "spool",
            batch_rows=self.config.database.batch_rows,
            batch_seconds=self.config.database.batch_seconds,
            notify=self.config.notify,
        )
        await self.writer.start()
        ari = self.config.ari
        self.client = AriClient(
            ari.url,
            ari.username,
            ari.password.get_secret_value(),
            ari.app,
            ping_interval=ari.ping_interval,
            ping_timeout=ari.ping_timeout,
            reconnect_max_delay=ari.reconnect_max_delay,
        )
        await self.client.__aenter__()
        if self.config.notify.enabled:
            self.notifier = NotificationDispatcher(
                self._database.url,
                self.config.notify,
                fetch_audio=ari_audio_fetcher(self.client.rest),
                node=self.node,
            )
            await self.notifier.start()
        self.contacts = ContactDirectory(self._database.url)
        self.reservations = AgentReservations(self._database.url, self.node)
        self.app = CallApplication(
            self.client.rest,
            self.config,
            self.writer.submit,
            node=self.node,
            contacts=self.contacts,
            database_url=self._database.url,
            reservations=self.reservations,
            clock=self.clock,
        )
        # What exists now (modules, config, pools) lives as long as the daemon. Frozen, it is
        # left out of the cyclic collector's full passes, which otherwise walk it all and
        # stall the event loop ~75 ms at a time (benchmarks/load.py; Asterisk drops a client
        # that does not read for 100 ms).
        gc.collect()
        gc.freeze()
        self._events_task = asyncio.create_task(self.client.run(self.app), name="ari-events")
        if self.config.agi.enabled:
            self.agi = FastAgiServer(
                self._agi_routes(), host=self.config.agi.host, port=self.config.agi.port
            )
            await self.agi.start()
            log.info("FastAGI listening on %s:%d", self.config.agi.host, self.agi.port)
        self._housekeeping = asyncio.create_task(self._callback_queue(), name="callback-queue")
        log.info("daemon started: ARI %s app %s, node %s", ari.url, ari.app, self.node)

    def _agi_routes(self) -> dict[str, Handler]:
        url = self.database.url
        routes: dict[str, Handler] = {RESULT_ROUTE: make_outbound_result_route(url)}
        company = self.config.outbound.company_number
        if company:
            routes[ROUTE] = make_outbound_route(
                url, company_number=company, company_name=self.config.outbound.company_name
            )
        return routes

    async def _callback_queue(self) -> None:
        """Return stale claims to the queue and light the callbacks BLF key while tasks are
        due (device state Stasis:pbx-callbacks, shown by `devstate list` too)."""
        url = self.database.url
        stale = timedelta(minutes=self.config.callbacks.stale_claim_minutes)
        published: str | None = None
        while True:
            try:
                await release_stale(url, stale)
                state = device_state_for(await due_count(url))
                if state != published and self.client is not None and self.client.connected:
                    await self.client.rest.set_device_state(DEVICE_STATE, state)
                    published = state
            except PbxError as exc:
                log.warning("callback queue housekeeping failed, will retry: %s", exc)
            await asyncio.sleep(self.config.callbacks.check_seconds)

    async def wait_connected(self, timeout: float) -> None:
        assert self.client is not None
        await self.client.wait_connected(timeout)

    async def serve(self) -> None:
        """Run until cancelled or the events task dies (which stops the daemon loudly)."""
        assert self._events_task is not None
        watched: set[asyncio.Task[None]] = {self._events_task}
        if self.notifier is not None and self.notifier.task is not None:
            watched.add(self.notifier.task)
        if self._housekeeping is not None:
            watched.add(self._housekeeping)
        done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        raise DaemonError(f"the {done.pop().get_name()} task ended unexpectedly")

    async def stop(self, drain_seconds: float = 5.0) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        if self.agi is not None:
            await self.agi.close()
        if self.client is not None:
            await self.client.close()
        if self._events_task is not None:
            self._events_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._events_task
        if self.app is not None:
            await self.app.drain(drain_seconds)
        if self.notifier is not None:
            await self.notifier.close()  # before the ARI session: it fetches recordings
        if self.client is not None:
            await self.client.__aexit__(None, None, None)
        if self.writer is not None:
            await self.writer.close()
        if self.contacts is not None:
            await self.contacts.aclose()
        if self.reservations is not None:
            await self.reservations.close()
        if self._own_database and self._database is not None:
            await self._database.close()
        log.info("daemon stopped")
