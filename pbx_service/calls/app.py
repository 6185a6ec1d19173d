"""The Stasis application: turns ARI events into call sessions and keeps them in step.

Every published number enters here (`Stasis(pbx-service,did=...)`); each new caller channel
gets an `InboundCall` coroutine and its own ordered event queue. After a WebSocket gap, ARI
replays nothing, so the application re-lists channels and bridges (two requests in all) and
tells every live session which of its channels still exist.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from pbx_service.ari import AriEvent, AriRest, EventDispatcher
from pbx_service.ari.errors import AriError
from pbx_service.calls.agents import AgentBoard
from pbx_service.calls.dialback import FEATURE_ARG, LEG_ARG, DialBack
from pbx_service.calls.hours import business_hours
from pbx_service.calls.numbers import to_e164
from pbx_service.calls.presence import PRESENCE_ARG, StatePublisher, handle_presence
from pbx_service.calls.session import RESYNC_EVENT, CallPorts, ContactLookup, InboundCall
from pbx_service.config import Config
from pbx_service.store.records import CallRecord
from pbx_service.store.reservations import AgentReservations

log = logging.getLogger(__name__)


class CallApplication:
    """Implements `pbx_service.ari.AriListener`."""

    def __init__(
        self,
        rest: AriRest,
        config: Config,
        submit: Callable[[CallRecord], None],
        *,
        node: str | None = None,
        contacts: ContactLookup | None = None,
        database_url: str | None = None,
        reservations: AgentReservations | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.rest = rest
        self.config = config
        self.node = node
        self.dispatcher = EventDispatcher(self._unrouted)
        self.ports = CallPorts(
            rest=rest,
            config=config,
            submit=submit,
            route=self.dispatcher.route,
            unroute=self.dispatcher.unroute,
            hours=business_hours(config.schedules),
            board=AgentBoard(config),
            contacts=contacts,
            reservations=reservations,
            direct_lines={
                to_e164(number) or number: agent for number, agent in config.direct_lines.items()
            },
            clock=clock,
        )
        self.database_url = database_url
        self.calls: dict[str, InboundCall] = {}
        self.publisher = StatePublisher(rest, self.ports.board)
        self.ports.board.changed = self._agent_changed
        self.ports.board.queue_changed = self._queue_changed
        self._tasks: set[asyncio.Task[None]] = set()
        self.resyncs = 0
        self.connected = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    # ---- AriListener ----------------------------------------------------------------------

    async def on_connected(self, reconnected: bool) -> None:
        self.connected.set()
        self._spawn(self._watch_endpoints(), "ari-endpoint-subscription")
        if reconnected:
            self._spawn(self.resync(), "ari-resync")

    async def on_disconnected(self) -> None:
        self.connected.clear()

    async def on_event(self, event: AriEvent) -> None:
        await self.dispatcher.dispatch(event)

    # ---- sessions -------------------------------------------------------------------------

    async def _watch_endpoints(self) -> None:
        """Phones registering and going away (EndpointStateChange) keep offline agents from
        being rung. Technologies are those of the agents' dial strings."""
        technologies = {
            agent.endpoint.split("/", 1)[0] for agent in self.ports.board.directory.values()
        } - {"Local"}
        for technology in sorted(technologies):
            try:
                await self.rest.subscribe(self.config.ari.app, f"endpoint:{technology}")
            except AriError as exc:
                log.warning("cannot follow %s endpoint states: %s", technology, exc)

    def _unrouted(self, event: AriEvent) -> None:
        if event.type == "EndpointStateChange" and event.endpoint is not None:
            endpoint = event.endpoint
            name = f"{endpoint.technology}/{endpoint.resource}"
            affected = self.ports.board.endpoint_changed(name, endpoint.state == "online")
            if affected:
                log.info("agents %s: phone %s is %s", affected, name, endpoint.state)
            return
        if event.type != "StasisStart":
            return  # events of channels no session owns (yet or any more)
        channel = event.channel
        if channel is None:
            return
        args = event.args
        if args and args[0] == PRESENCE_ARG:
            self._spawn(handle_presence(self.ports, event), f"presence-{channel.id}")
            return
        if args and args[0] == FEATURE_ARG and self.database_url is not None:
            work = DialBack(self.ports, event, self.database_url)
            self._spawn(work.run(), f"dialback-{channel.id}")
            return
        if args and args[0] in ("agent", LEG_ARG):
            # An agent leg whose call is gone (ended, or owned by a previous run): release it.
            log.info("releasing orphan agent leg %s (%s)", channel.id, channel.name)
            self._spawn(self._release(channel.id), f"release-{channel.id}")
            return
        call = InboundCall(self.ports, event, node=self.node)
        self.calls[call.channel_id] = call
        self._idle.clear()
        self._spawn(self._run_call(call), f"call-{call.channel_id}")

    def _agent_changed(self, agent_id: str) -> None:
        self._spawn(self.publisher.publish(agent_id), f"devstate-{agent_id}")

    def _queue_changed(self, team: str) -> None:
        self._spawn(self.publisher.publish_queue(team), f"devstate-queue-{team}")

    async def _run_call(self, call: InboundCall) -> None:
        try:
            await call.run()
        finally:
            self.calls.pop(call.channel_id, None)
            if not self.calls:
                self._idle.set()

    async def _release(self, channel_id: str) -> None:
        try:
            await self.rest.hangup(channel_id)
        except AriError as exc:
            log.debug("orphan leg %s already gone: %s", channel_id, exc)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s died", task.get_name(), exc_info=task.exception())

    async def resync(self) -> None:
        """After a gap: which of our channels and bridges still exist? Two requests in all."""
        try:
            channels = await self.rest.list_channels()
            bridges = await self.rest.list_bridges()
        except AriError as exc:
            log.warning("resync failed, will retry on the next connect: %s", exc)
            return
        self.resyncs += 1
        live_channels = [c.id for c in channels]
        live_bridges = [b.id for b in bridges]
        log.info(
            "resynced: %d channels, %d bridges live, %d calls in progress",
            len(live_channels),
            len(live_bridges),
            len(self.calls),
        )
        event = AriEvent({"type": RESYNC_EVENT, "channels": live_channels, "bridges": live_bridges})
        for call in list(self.calls.values()):
            await call.queue.put(event)

    @property
    def active_calls(self) -> int:
        return len(self.calls)

    async def wait_idle(self, timeout: float) -> None:
        """Wait until no call is in progress (TimeoutError after `timeout` seconds)."""
        async with asyncio.timeout(timeout):
            await self._idle.wait()

    async def drain(self, timeout: float) -> None:
        """Wait for running calls to finish, then cancel what is left."""
        tasks = [t for t in self._tasks if not t.done()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
