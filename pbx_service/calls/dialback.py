"""Working the callback queue from a desk phone: the agent dials the feature code (``*9``), the
daemon claims the most urgent due task for them, tells them who it is (the voicemails, then a
tone), dials the customer presenting the company's one number, and bridges the two.

The call result decides the task: answered → done; no answer, busy or unreachable → a
no-answer attempt (the queue reschedules it); the agent hanging up before the customer
answers → the task goes back to the queue. Nothing is lost whichever side leaves first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from pbx_service.ari import AriEvent, AriHTTPError
from pbx_service.ari.errors import AriError
from pbx_service.callbacks import queue
from pbx_service.calls.session import CallPorts, media, new_id
from pbx_service.errors import PbxError

log = logging.getLogger(__name__)

FEATURE_ARG = "callbacks"
LEG_ARG = "dialback"
_FAILED_DIAL = {"BUSY", "NOANSWER", "CHANUNAVAIL", "CONGESTION", "CANCEL", "INVALIDARGS"}


class DialBack:
    def __init__(self, ports: CallPorts, start: AriEvent, database_url: str) -> None:
        channel = start.channel
        assert channel is not None
        self.ports = ports
        self.database_url = database_url
        self.channel_id = channel.id
        args = start.args
        # Stasis(pbx-service,callbacks,${CALLERID(num)}): the agent is the calling extension.
        self.agent = (args[1] if len(args) > 1 and args[1] else channel.caller.number) or "?"
        self.queue: asyncio.Queue[AriEvent] = asyncio.Queue(maxsize=1000)
        self._owned: set[str] = set()
        self.own(self.channel_id)
        self.agent_gone = False
        self.task: queue.ClaimedTask | None = None
        self.result: str | None = None

    def own(self, key: str) -> None:
        self._owned.add(key)
        self.ports.route(key, self.queue)

    async def _next(self, timeout: float | None) -> AriEvent | None:
        try:
            ev = await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None
        if ev.channel_id == self.channel_id and (
            ev.type in ("StasisEnd", "ChannelDestroyed")
            or (ev.type == "ChannelHangupRequest" and not ev.soft)
        ):
            self.agent_gone = True
        return ev

    async def _play(self, items: list[str]) -> None:
        playback_id = new_id()
        self.own(playback_id)
        await self.ports.rest.play(self.channel_id, items, playback_id=playback_id)
        while not self.agent_gone:
            ev = await self._next(None)
            if (
                ev
                and ev.type == "PlaybackFinished"
                and ev.playback
                and ev.playback.id == playback_id
            ):
                return

    async def run(self) -> None:
        try:
            await self._work()
        except (AriError, PbxError) as exc:
            log.warning("dial-back by %s failed: %s", self.agent, exc)
            if self.task is not None and self.result is None:
                await queue.release(self.database_url, self.task.id)
        finally:
            with contextlib.suppress(AriError):
                await self.ports.rest.hangup(self.channel_id)
            for key in self._owned:
                self.ports.unroute(key)

    async def _work(self) -> None:
        rest = self.ports.rest
        await rest.answer(self.channel_id)
        self.task = await queue.claim_next(self.database_url, self.agent, dialable=True)
        if self.task is None or self.task.number is None:
            await self._play([media("callback-no-tasks")])
            return
        task = self.task
        number = self.task.number
        # Who this is: their voicemails, then a tone before the customer rings.
        await self._play(
            [media("connecting"), *(f"recording:{v}" for v in task.voicemails), "sound:beep"]
        )
        if self.agent_gone:
            await queue.release(self.database_url, task.id)
            return
        outbound = self.ports.config.outbound
        endpoint = outbound.dial_template.format(number=number, digits=number.lstrip("+"))
        leg_id, other_id = new_id(), new_id()
        self.own(leg_id)
        self.own(other_id)
        caller_id = outbound.company_number
        name = outbound.company_name
        try:
            await rest.originate(
                endpoint,
                app=self.ports.config.ari.app,
                app_args=f"{LEG_ARG},{task.id}",
                channel_id=leg_id,
                other_channel_id=other_id,
                originator=self.channel_id,
                caller_id=f'"{name or caller_id}" <{caller_id}>' if caller_id else None,
                timeout=int(outbound.ring_timeout),
            )
        except AriHTTPError as exc:
            log.warning("cannot dial %s for task %s: %s", endpoint, task.id, exc.message)
            await self._finish("no_answer", f"dial failed: {exc.message}")
            return
        answered = await self._wait_answer(leg_id, outbound.ring_timeout + 5)
        if answered is None:
            return  # _wait_answer recorded the result
        bridge_id = new_id()
        self.own(bridge_id)
        await rest.create_bridge(bridge_id, type="mixing")
        try:
            await rest.add_channel(bridge_id, [self.channel_id, leg_id])
            await self._finish("done", f"called back by {self.agent}")
            while not self.agent_gone:
                ev = await self._next(None)
                if ev and ev.channel_id == leg_id and ev.type in ("StasisEnd", "ChannelDestroyed"):
                    break
        finally:
            with contextlib.suppress(AriError):
                await rest.hangup(leg_id)
            with contextlib.suppress(AriError):
                await rest.destroy_bridge(bridge_id)

    async def _wait_answer(self, leg_id: str, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while True:
            ev = await self._next(max(0.0, deadline - time.monotonic()))
            if self.agent_gone:
                with contextlib.suppress(AriError):
                    await self.ports.rest.hangup(leg_id)
                assert self.task is not None
                await queue.release(self.database_url, self.task.id)
                return None
            if ev is None:
                with contextlib.suppress(AriError):
                    await self.ports.rest.hangup(leg_id)
                await self._finish("no_answer", "no answer")
                return None
            if ev.type == "StasisStart" and ev.channel_id == leg_id:
                return leg_id
            if ev.type == "Dial" and ev.peer and ev.peer.id == leg_id:
                if (ev.dialstatus or "") in _FAILED_DIAL:
                    await self._finish("no_answer", ev.dialstatus or "")
                    return None
            if ev.type == "ChannelDestroyed" and ev.channel_id == leg_id:
                await self._finish("no_answer", f"cause {ev.cause}")
                return None

    async def _finish(self, result: str, notes: str) -> None:
        assert self.task is not None
        self.result = result
        await queue.finish(self.database_url, self.task.id, self.agent, result, notes)
        log.info("callback task %s: %s by %s (%s)", self.task.id, result, self.agent, notes)
