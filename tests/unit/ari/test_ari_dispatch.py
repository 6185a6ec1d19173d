"""EventDispatcher: routing keys, per-call order, fan-out, unrouted hook, backpressure."""

from __future__ import annotations

import asyncio

import pytest

from pbx_service.ari import AriEvent, AriUsageError, EventDispatcher, parse_event


def ev(data: str) -> AriEvent:
    return parse_event(data.encode())


def test_keys_of_common_events() -> None:
    keys = EventDispatcher.keys
    assert keys(ev('{"type": "StasisStart", "channel": {"id": "c1"}}')) == ("c1",)
    assert keys(
        ev('{"type": "Dial", "peer": {"id": "ag1"}, "caller": {"id": "c1"}, "dialstatus": ""}')
    ) == ("ag1", "c1")
    assert keys(
        ev('{"type": "ChannelEnteredBridge", "channel": {"id": "c1"}, "bridge": {"id": "br"}}')
    ) == ("c1", "br")
    assert keys(
        ev('{"type": "PlaybackFinished", "playback": {"id": "p", "target_uri": "channel:c1"}}')
    ) == ("c1",)
    assert keys(
        ev('{"type": "RecordingStarted", "recording": {"name": "r", "target_uri": "bridge:br"}}')
    ) == ("br",)
    # A channel carries a caller *id* object, not a channel: only top-level fields count.
    assert keys(ev('{"type": "X", "channel": {"id": "c1", "caller": {"id": "zz"}}}')) == ("c1",)
    # CallBroadcast's caller is a string, not a channel.
    assert keys(ev('{"type": "CallBroadcast", "caller": "123", "channel": {"id": "c"}}')) == ("c",)
    assert keys(ev('{"type": "DeviceStateChanged", "device_state": {"name": "n"}}')) == ()
    assert keys(ev('{"type": "PlaybackStarted", "playback": {"target_uri": "channel:"}}')) == ()
    assert keys(ev('{"type": "X", "channel": {"id": "c1"}, "peer": {"id": "c1"}}')) == ("c1",)


async def test_events_reach_the_routed_queue_in_order() -> None:
    unrouted: list[AriEvent] = []
    d = EventDispatcher(unrouted.append)
    q = d.new_queue()
    d.route("c1", q)
    for digit in "1234567890#*":
        await d.dispatch(
            ev(f'{{"type": "ChannelDtmfReceived", "digit": "{digit}", "channel": {{"id": "c1"}}}}')
        )
    got = [q.get_nowait().digit for _ in range(q.qsize())]
    assert "".join(d or "" for d in got) == "1234567890#*"
    assert unrouted == []


async def test_one_event_once_per_queue_and_fan_out() -> None:
    d = EventDispatcher(lambda e: None)
    call_a, call_b = d.new_queue(), d.new_queue()
    d.route("a-caller", call_a)
    d.route("br", call_a)  # same queue under two keys: the event must arrive once
    d.route("b-caller", call_b)
    entered = (
        '{"type": "ChannelEnteredBridge", "channel": {"id": "a-caller"}, "bridge": {"id": "br"}}'
    )
    await d.dispatch(ev(entered))
    assert call_a.qsize() == 1 and call_b.qsize() == 0
    await d.dispatch(
        ev('{"type": "Dial", "caller": {"id": "a-caller"}, "peer": {"id": "b-caller"}}')
    )
    assert call_a.qsize() == 2 and call_b.qsize() == 1


async def test_unrouted_hook_can_route_before_the_next_event() -> None:
    queues: dict[str, asyncio.Queue[AriEvent]] = {}
    seen: list[str] = []

    def on_unrouted(event: AriEvent) -> None:
        seen.append(event.type)
        if event.type == "StasisStart" and event.channel_id:
            q = d.new_queue()
            q.put_nowait(event)
            queues[event.channel_id] = q
            d.route(event.channel_id, q)

    d = EventDispatcher(on_unrouted)
    await d.dispatch(ev('{"type": "StasisStart", "channel": {"id": "c7"}}'))
    await d.dispatch(ev('{"type": "ChannelDtmfReceived", "digit": "5", "channel": {"id": "c7"}}'))
    await d.dispatch(ev('{"type": "DeviceStateChanged", "device_state": {"name": "x"}}'))
    assert seen == ["StasisStart", "DeviceStateChanged"]
    q = queues["c7"]
    assert [q.get_nowait().type, q.get_nowait().type] == ["StasisStart", "ChannelDtmfReceived"]
    assert len(d) == 1


async def test_unroute_sends_later_events_to_the_hook() -> None:
    unrouted: list[AriEvent] = []
    d = EventDispatcher(unrouted.append)
    q = d.new_queue()
    d.route("c1", q)
    d.unroute("c1")
    d.unroute("never-routed")
    await d.dispatch(ev('{"type": "StasisEnd", "channel": {"id": "c1"}}'))
    assert q.empty() and len(unrouted) == 1
    assert d.queue_for("c1") is None


async def test_full_queue_makes_dispatch_wait_without_losing_order() -> None:
    d = EventDispatcher(lambda e: None, queue_size=2)
    q = d.new_queue()
    assert q.maxsize == 2
    d.route("c1", q)

    async def produce() -> None:
        for i in range(5):
            await d.dispatch(ev(f'{{"type": "T{i}", "channel": {{"id": "c1"}}}}'))

    producer = asyncio.create_task(produce())
    await asyncio.sleep(0.01)
    # Two fit; the third dispatch is waiting for room.
    assert q.full() and not producer.done()
    got = []
    for _ in range(5):
        got.append((await q.get()).type)
    await asyncio.wait_for(producer, 1)
    assert got == ["T0", "T1", "T2", "T3", "T4"]


def test_queue_size_must_be_positive() -> None:
    with pytest.raises(AriUsageError):
        EventDispatcher(lambda e: None, queue_size=0)
