"""The outbound FastAGI route over a real socket, the test playing Asterisk on raw bytes, with a
real PostgreSQL: caller ID set to the company number, the callback task for the dialled number
closed by the calling extension, the call logged."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from pbx_service.agi.server import FastAgiServer
from pbx_service.agi.testing import FakeAsterisk, request_block
from pbx_service.callbacks import queue
from pbx_service.callbacks.outbound import ROUTE, OutboundConfigError, make_outbound_route
from tests.store.helpers import T0, UNREACHABLE_URL, fetch
from tests.store.test_callback_queue import add_task

pytestmark = pytest.mark.timeout(30)

NOW = T0 + timedelta(minutes=30)
COMPANY = "+74951234567"
CUSTOMER = "+74959876543"
OK = b"200 result=1\n"

Start = Callable[..., Awaitable[FakeAsterisk]]


@pytest.fixture
async def dial(database_url: str) -> AsyncIterator[Start]:
    """Start a FastAGI server with the outbound route and connect as Asterisk to it."""
    servers: list[FastAgiServer] = []
    clients: list[FakeAsterisk] = []

    async def start(
        dialled: str,
        *,
        url: str | None = None,
        company_name: str | None = "Acme",
        args: tuple[str, ...] | None = None,
        **env: str,
    ) -> FakeAsterisk:
        route = make_outbound_route(
            url or database_url,
            company_number="8 (495) 123-45-67",
            company_name=company_name,
            clock=lambda: NOW,
            db_timeout=5.0,
        )
        server = FastAgiServer({ROUTE: route}, port=0)
        await server.start()
        servers.append(server)
        fields: dict[str, str] = {
            "callerid": "101",
            "calleridname": "Anna",
            "channel": "PJSIP/101-0000002a",
            "context": "pbx-outbound",
            "extension": dialled,
            **env,
        }
        block = request_block(ROUTE, args=(dialled,) if args is None else args, **fields)
        client = await FakeAsterisk.connect(server.port, block)
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()
    for server in servers:
        await server.close()


async def caller_id_commands(asterisk: FakeAsterisk, name: bytes = b'"Acme"') -> None:
    assert (
        await asterisk.answer(OK) == b'SET VARIABLE "CALLERID(num)" "' + COMPANY.encode() + b'"\n'
    )
    assert await asterisk.answer(OK) == b'SET VARIABLE "CALLERID(name)" ' + name + b"\n"


async def task(database_url: str, task_id: uuid.UUID) -> Any:
    [row] = await fetch(database_url, "SELECT * FROM callback_tasks WHERE id = $1", task_id)
    return row


async def outbound_rows(database_url: str) -> list[Any]:
    return await fetch(database_url, "SELECT * FROM outbound_calls ORDER BY started_at")


async def test_calling_a_customer_back_closes_their_task(database_url: str, dial: Start) -> None:
    task_id = await add_task(database_url, CUSTOMER)
    other = await add_task(database_url, "+74951110000")
    asterisk = await dial("84959876543")  # dialled the domestic way
    await caller_id_commands(asterisk)
    assert await asterisk.answer(OK) == f'SET VARIABLE "PBX_CALLBACK_TASK" "{task_id}"\n'.encode()
    assert await asterisk.closed_by_server()  # the dialplan goes on to Dial
    closed = await task(database_url, task_id)
    assert closed["status"] == "done" and closed["closed_by"] == "101"
    assert closed["close_reason"] == "called back from 101" and closed["closed_at"] == NOW
    assert closed["dial_attempts"] == 1
    assert (await task(database_url, other))["status"] == "open"
    [logged] = await outbound_rows(database_url)
    assert logged["extension"] == "101" and logged["dialled"] == "84959876543"
    assert logged["number"] == CUSTOMER and logged["callback_task"] == task_id
    assert logged["channel"] == "PJSIP/101-0000002a" and logged["started_at"] == NOW


async def test_an_unknown_number_changes_no_task(database_url: str, dial: Start) -> None:
    task_id = await add_task(database_url, CUSTOMER)
    before = await queue.list_tasks(database_url)
    asterisk = await dial("+74957770000")
    await caller_id_commands(asterisk)
    assert await asterisk.closed_by_server()  # no PBX_CALLBACK_TASK: nothing was closed
    assert await queue.list_tasks(database_url) == before
    assert (await task(database_url, task_id))["status"] == "open"
    [logged] = await outbound_rows(database_url)
    assert logged["number"] == "+74957770000" and logged["callback_task"] is None


async def test_a_task_claimed_by_another_agent_is_closed_too(
    database_url: str, dial: Start
) -> None:
    task_id = await add_task(database_url, CUSTOMER)
    await queue.claim(database_url, task_id, "102", now=T0)
    # Phone with no caller number: the extension comes from the channel name.
    asterisk = await dial(CUSTOMER, callerid="unknown", channel="PJSIP/103-00000001", args=())
    await caller_id_commands(asterisk)
    assert await asterisk.answer(OK) == f'SET VARIABLE "PBX_CALLBACK_TASK" "{task_id}"\n'.encode()
    assert await asterisk.closed_by_server()
    closed = await task(database_url, task_id)
    assert closed["status"] == "done" and closed["closed_by"] == "103"


async def test_caller_name_is_quoted_and_cannot_inject_commands(
    database_url: str, dial: Start
) -> None:
    asterisk = await dial("+74957770000", company_name='Acme "Best" \\ Co\nEXEC Hangup')
    await caller_id_commands(asterisk, name=b'"Acme \\"Best\\" \\\\ CoEXEC Hangup"')
    assert await asterisk.closed_by_server()


async def test_default_caller_name_is_the_company_number(database_url: str, dial: Start) -> None:
    asterisk = await dial("+74957770000", company_name=None)
    await caller_id_commands(asterisk, name=b'"' + COMPANY.encode() + b'"')
    assert await asterisk.closed_by_server()


async def test_database_down_still_lets_the_call_through(dial: Start) -> None:
    asterisk = await dial(CUSTOMER, url=UNREACHABLE_URL)
    await caller_id_commands(asterisk)
    command = await asterisk.answer(OK)
    assert command.startswith(b'VERBOSE "pbx-service outbound: call not logged')
    assert await asterisk.closed_by_server()


async def test_nothing_dialled_sets_nothing(database_url: str, dial: Start) -> None:
    asterisk = await dial("", args=())
    assert (await asterisk.answer(OK)).startswith(b'VERBOSE "pbx-service outbound: no number')
    assert await asterisk.closed_by_server()
    assert await outbound_rows(database_url) == []


async def test_hangup_before_the_caller_id_is_set_logs_nothing(
    database_url: str, dial: Start
) -> None:
    task_id = await add_task(database_url, CUSTOMER)
    asterisk = await dial(CUSTOMER)
    assert (await asterisk.expect()).startswith(b'SET VARIABLE "CALLERID(num)"')
    await asterisk.send(b"HANGUP\n" + OK)
    assert await asterisk.closed_by_server()
    assert (await task(database_url, task_id))["status"] == "open"


@pytest.mark.parametrize("number", ["", "sales", "+0"])
def test_a_company_number_that_is_not_a_number_is_refused(number: str) -> None:
    with pytest.raises(OutboundConfigError, match=r"E\.164"):
        make_outbound_route("postgresql://x@/y", company_number=number)
