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
from pbx_service.callbacks.outbound import (
    RESULT_ROUTE,
    ROUTE,
    OutboundConfigError,
    make_outbound_result_route,
    make_outbound_route,
)
from pbx_service.callbacks.queue import RetryPolicy
from tests.store.helpers import T0, UNREACHABLE_URL, fetch
from tests.store.test_callback_queue import add_task

pytestmark = pytest.mark.timeout(30)

NOW = T0 + timedelta(minutes=30)
HUNG_UP = NOW + timedelta(minutes=1)
UNIQUEID = "1795611470.171"
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
        route_name: str = ROUTE,
        **env: str,
    ) -> FakeAsterisk:
        route = make_outbound_route(
            url or database_url,
            company_number="8 (495) 123-45-67",
            company_name=company_name,
            clock=lambda: NOW,
            db_timeout=5.0,
        )
        result = make_outbound_result_route(
            url or database_url,
            policy=RetryPolicy(backoff=(timedelta(minutes=15),), max_dial_attempts=3),
            clock=lambda: HUNG_UP,
        )
        server = FastAgiServer({ROUTE: route, RESULT_ROUTE: result}, port=0)
        await server.start()
        servers.append(server)
        fields: dict[str, str] = {
            "callerid": "101",
            "calleridname": "Anna",
            "channel": "PJSIP/101-0000002a",
            "context": "pbx-outbound",
            "extension": dialled,
            "uniqueid": UNIQUEID,
            **env,
        }
        block = request_block(route_name, args=(dialled,) if args is None else args, **fields)
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


# -- the hangup handler's result ------------------------------------------------------------


async def call_back(database_url: str, dial: Start, number: str = CUSTOMER) -> uuid.UUID:
    """Dial ``number`` from 101; returns the task the call closed."""
    task_id = await add_task(database_url, number)
    asterisk = await dial(number)
    await caller_id_commands(asterisk)
    assert await asterisk.answer(OK) == f'SET VARIABLE "PBX_CALLBACK_TASK" "{task_id}"\n'.encode()
    assert await asterisk.closed_by_server()
    return task_id


async def hang_up(dial: Start, dial_status: str, number: str = CUSTOMER) -> None:
    """Asterisk runs the hangup handler's AGI; the route sends nothing and closes."""
    asterisk = await dial(number, route_name=RESULT_ROUTE, args=(number, dial_status))
    assert await asterisk.closed_by_server()


async def dial_statuses(database_url: str) -> list[str | None]:
    return [r["dial_status"] for r in await outbound_rows(database_url)]


@pytest.mark.parametrize("dial_status", ["NOANSWER", "BUSY", "CANCEL", ""])
async def test_an_unanswered_dial_reopens_the_task_after_the_backoff(
    database_url: str, dial: Start, dial_status: str
) -> None:
    task_id = await call_back(database_url, dial)
    await hang_up(dial, dial_status)
    reopened = await task(database_url, task_id)
    assert reopened["status"] == "open" and reopened["dial_attempts"] == 1
    assert reopened["closed_by"] is None and reopened["closed_at"] is None
    assert reopened["close_reason"] is None
    assert reopened["due_at"] == HUNG_UP + timedelta(minutes=15)
    assert await dial_statuses(database_url) == [dial_status]


async def test_an_answered_dial_keeps_the_task_done(database_url: str, dial: Start) -> None:
    task_id = await call_back(database_url, dial)
    await hang_up(dial, "ANSWER")
    assert (await task(database_url, task_id))["status"] == "done"
    assert await dial_statuses(database_url) == ["ANSWER"]
    await hang_up(dial, "NOANSWER")  # a repeated report changes nothing
    assert (await task(database_url, task_id))["status"] == "done"
    assert await dial_statuses(database_url) == ["ANSWER"]


async def test_the_last_unanswered_dial_closes_the_task_as_no_answer(
    database_url: str, dial: Start
) -> None:
    task_id = await add_task(database_url, CUSTOMER)
    await fetch(database_url, "UPDATE callback_tasks SET dial_attempts = 2 WHERE id = $1", task_id)
    asterisk = await dial(CUSTOMER)
    await caller_id_commands(asterisk)
    await asterisk.answer(OK)
    assert await asterisk.closed_by_server()
    await hang_up(dial, "NOANSWER")
    closed = await task(database_url, task_id)
    assert closed["status"] == "no_answer" and closed["dial_attempts"] == 3
    assert closed["close_reason"] == "no answer after 3 dial attempts"
    assert closed["closed_by"] == "101" and closed["closed_at"] == HUNG_UP


async def test_a_new_task_since_the_dial_is_left_to_carry_on(
    database_url: str, dial: Start
) -> None:
    task_id = await call_back(database_url, dial)
    newer = await add_task(database_url, CUSTOMER, created=timedelta(minutes=31))
    await hang_up(dial, "NOANSWER")
    assert (await task(database_url, task_id))["status"] == "done"
    assert (await task(database_url, newer))["status"] == "open"


async def test_a_task_closed_by_someone_else_since_is_left_alone(
    database_url: str, dial: Start
) -> None:
    task_id = await call_back(database_url, dial)
    await fetch(
        database_url,
        "UPDATE callback_tasks SET closed_by = 'PJSIP/105', closed_at = $2 WHERE id = $1",
        task_id,
        HUNG_UP,
    )
    await hang_up(dial, "NOANSWER")
    assert (await task(database_url, task_id))["closed_by"] == "PJSIP/105"


async def test_a_result_for_an_unknown_channel_changes_nothing(
    database_url: str, dial: Start
) -> None:
    task_id = await add_task(database_url, CUSTOMER)
    await hang_up(dial, "NOANSWER")
    assert (await task(database_url, task_id))["status"] == "open"
    assert await outbound_rows(database_url) == []
