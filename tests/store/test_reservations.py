"""Agent reservations shared by daemons: one call holds an agent at a time, leases expire,
and a database in trouble is a quick, typed error instead of a stalled call."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from pbx_service.store.errors import DatabaseUnavailableError
from pbx_service.store.reservations import AgentReservations
from tests.store.helpers import UNREACHABLE_URL


async def test_one_call_holds_an_agent_until_released(database_url: str) -> None:
    node1, node2 = AgentReservations(database_url, "n1"), AgentReservations(database_url, "n2")
    try:
        lease = timedelta(seconds=30)
        assert await node1.reserve(["anna", "boris"], "call-1", lease) == ["anna", "boris"]
        assert await node2.reserve(["anna", "boris", "vera"], "call-2", lease) == ["vera"]
        await node1.release(["boris"], "call-1")
        assert await node2.reserve(["boris"], "call-2", lease) == ["boris"]
        await node2.release(["anna"], "call-2")  # not its reservation: nothing happens
        assert await node1.held() == {"anna", "boris", "vera"}
    finally:
        await node1.close()
        await node2.close()


async def test_an_expired_lease_can_be_taken(database_url: str) -> None:
    node = AgentReservations(database_url, "n1")
    try:
        assert await node.reserve(["anna"], "call-1", timedelta(seconds=-1)) == ["anna"]
        assert await node.reserve(["anna"], "call-2", timedelta(seconds=30)) == ["anna"]
        await node.release(["anna"], "call-2", wrap_up=30)  # wrap-up: still held
        assert await node.reserve(["anna"], "call-3", timedelta(seconds=30)) == []
    finally:
        await node.close()


async def test_unreachable_database_is_a_quick_typed_error() -> None:
    node = AgentReservations(UNREACHABLE_URL, "n1")
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailableError):
        await node.reserve(["anna"], "call-1", timedelta(seconds=30))
    assert time.monotonic() - started < 5
    await node.close()
