"""The FastAGI route for outbound calls from internal phones (dialplan: extensions_outbound.conf).

For each call an internal phone places to an outside number, the dialplan runs
``AGI(agi://127.0.0.1:4573/outbound,${EXTEN})`` and then ``Dial``s the trunk itself. The route:

1. presents the company's one number as caller ID (``CALLERID(num)``, ``CALLERID(name)``), so a
   customer called back sees the number they called, never an internal extension;
2. in one transaction, closes the open callback task for the dialled number (E.164-normalised,
   the key tasks use) with ``closed_by`` = the calling extension and reason
   ``called back from <ext>``, and logs the call in ``outbound_calls`` linked to that task;
3. returns, and the dialplan goes on to ``Dial``.

Closing at dial time is optimistic, so the dialplan also pushes a hangup handler that runs
``AGI(agi://127.0.0.1:4573/outbound-result,${number},${DIALSTATUS})``: `make_outbound_result_route`
records the dial status and, unless it is ``ANSWER``, undoes the close as a ``no_answer`` attempt
(`queue.undo_dial_close`: open again after the backoff, or closed ``no_answer`` at the maximum),
so a customer who did not pick up is not lost.

The database never holds the call up for long and never stops it: the database step runs under
``db_timeout`` and a failure is logged and shown on the Asterisk console, and the call proceeds.
The caller ID is set first, before anything can fail.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from pbx_service.agi.errors import AgiError, AgiHangup
from pbx_service.agi.protocol import AgiRequest
from pbx_service.agi.server import AgiSession, Handler
from pbx_service.callbacks.queue import (
    DEFAULT_RETRY_POLICY,
    RetryPolicy,
    close_number,
    connect,
    undo_dial_close,
)
from pbx_service.calls.numbers import clean_text, to_e164
from pbx_service.errors import PbxError

log = logging.getLogger(__name__)

ROUTE: str = "outbound"
"""The route path the dialplan uses: ``agi://127.0.0.1:4573/outbound``."""
RESULT_ROUTE: str = "outbound-result"
"""The hangup handler's route: ``agi://127.0.0.1:4573/outbound-result,<number>,${DIALSTATUS}``."""

# "PJSIP/101-0000002a" -> "101": the endpoint of a channel name.
_CHANNEL_ENDPOINT_RE = re.compile(r"^[A-Za-z0-9_]+/(?P<endpoint>[^-/@]+)")
_UNKNOWN = {"", "unknown", "anonymous"}

_LOG_SQL = """
INSERT INTO outbound_calls (id, started_at, extension, dialled, number, channel, uniqueid,
                            callback_task)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""


class OutboundConfigError(PbxError):
    """The outbound route was configured with a value it cannot use (e.g. the company number)."""

    error_id = "callback-outbound-config"


def dialled_number(request: AgiRequest) -> str:
    """What the phone dialled: the first AGI argument, else the dialplan extension."""
    if request.args and request.args[0].strip():
        return request.args[0].strip()
    return request.extension.strip()


def calling_extension(request: AgiRequest) -> str:
    """The internal phone that placed the call: its caller number, else its channel's endpoint
    (``PJSIP/101-0000002a`` -> ``101``), else ``unknown``."""
    callerid = request.callerid.strip()
    if callerid.lower() not in _UNKNOWN:
        return clean_text(callerid, 64) or "unknown"
    match = _CHANNEL_ENDPOINT_RE.match(request.channel)
    if match:
        return clean_text(match.group("endpoint"), 64) or "unknown"
    return "unknown"


def make_outbound_route(
    database_url: str,
    *,
    company_number: str,
    company_name: str | None = None,
    default_region: str = "RU",
    db_timeout: float = 3.0,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Handler:
    """The ``outbound`` FastAGI handler: register it as ``{ROUTE: make_outbound_route(...)}``.

    ``company_number`` is the one number customers see (any form `to_e164` understands; it must
    normalise to E.164). ``company_name`` is the presented caller name (default: the number).
    Raises `OutboundConfigError` at construction for a company number that is not a number.
    """
    presented = to_e164(company_number, default_region)
    if presented is None or not re.fullmatch(r"\+[1-9][0-9]{6,14}", presented):
        raise OutboundConfigError(
            f"company number {company_number!r} is not a phone number in E.164 form "
            "(e.g. +74951234567); set the company's published number"
        )
    name = clean_text(company_name, 80) if company_name else None
    presented_name = name or presented
    if db_timeout <= 0:
        raise OutboundConfigError(f"outbound db_timeout must be positive, got {db_timeout}")

    async def outbound(session: AgiSession) -> None:
        request = session.request
        dialled = dialled_number(request)
        if not dialled:
            await session.verbose("pbx-service outbound: no number dialled; nothing to do", 1)
            return
        extension = calling_extension(request)
        await session.set_variable("CALLERID(num)", presented)
        await session.set_variable("CALLERID(name)", presented_name)
        number = to_e164(dialled, default_region)
        try:
            async with asyncio.timeout(db_timeout):
                task_id = await _log_and_close(
                    database_url, request, dialled, number, extension, clock()
                )
        except (PbxError, TimeoutError) as exc:
            # The call matters more than its log line: say why and let it through.
            log.warning(
                "outbound call from %s to %s not logged (task not closed): %s",
                extension,
                dialled,
                str(exc) or "database timed out",
            )
            await _console(session, "pbx-service outbound: call not logged, database unavailable")
            return
        if task_id is not None:
            log.info("callback task %s closed: %s called %s back", task_id, extension, number)
            await session.set_variable("PBX_CALLBACK_TASK", str(task_id))

    return outbound


async def _log_and_close(
    database_url: str,
    request: AgiRequest,
    dialled: str,
    number: str | None,
    extension: str,
    at: datetime,
) -> uuid.UUID | None:
    async with connect(database_url) as conn, conn.transaction():
        task_id = None
        if number is not None:
            task_id = await close_number(
                conn, number, extension, f"called back from {extension}", at
            )
        await conn.execute(
            _LOG_SQL,
            uuid.uuid4(),
            at,
            extension,
            clean_text(dialled, 64) or "?",
            number,
            clean_text(request.channel, 200),
            clean_text(request.uniqueid, 64),
            task_id,
        )
    return task_id


_RESULT_SQL = """
UPDATE outbound_calls SET dial_status = $2
WHERE id = (
    SELECT id FROM outbound_calls WHERE uniqueid = $1 AND dial_status IS NULL
    ORDER BY started_at DESC LIMIT 1
)
RETURNING callback_task, extension, started_at
"""
_ANSWERED = "ANSWER"


def make_outbound_result_route(
    database_url: str,
    *,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    db_timeout: float = 3.0,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Handler:
    """The ``outbound-result`` FastAGI handler, run from the outbound call's hangup handler.

    Arguments: the number as dialled and ``${DIALSTATUS}`` (empty when the phone hung up before
    ``Dial`` ran). Finds the call by the channel's ``agi_uniqueid``, stores the status, and when
    it is not ``ANSWER`` undoes the task close the call made (see `queue.undo_dial_close`).
    Sends no AGI command: the channel is already hung up.
    """
    if db_timeout <= 0:
        raise OutboundConfigError(f"outbound db_timeout must be positive, got {db_timeout}")

    async def outbound_result(session: AgiSession) -> None:
        request = session.request
        args = request.args
        status = (clean_text(args[1], 32) if len(args) > 1 else None) or ""
        uniqueid = request.uniqueid
        if not uniqueid:
            log.warning("outbound result without agi_uniqueid on %s; ignored", request.channel)
            return
        try:
            async with asyncio.timeout(db_timeout):
                outcome = await _record_result(database_url, uniqueid, status, clock(), policy)
        except (PbxError, TimeoutError) as exc:
            log.warning(
                "outbound result %r for channel %s not recorded: %s",
                status,
                uniqueid,
                str(exc) or "database timed out",
            )
            return
        if outcome is not None:
            log.info("callback task %s: dial status %r, task %s", outcome[0], status, outcome[1])

    return outbound_result


async def _record_result(
    database_url: str, uniqueid: str, status: str, at: datetime, policy: RetryPolicy
) -> tuple[uuid.UUID, str] | None:
    async with connect(database_url) as conn, conn.transaction():
        row = await conn.fetchrow(_RESULT_SQL, uniqueid, status)
        if row is None or row["callback_task"] is None or status == _ANSWERED:
            return None
        task_id: uuid.UUID = row["callback_task"]
        new_status = await undo_dial_close(
            conn, task_id, row["extension"], row["started_at"], at, policy
        )
    return None if new_status is None else (task_id, new_status)


async def _console(session: AgiSession, message: str) -> None:
    try:
        await session.verbose(message, 1)
    except AgiHangup:
        raise
    except AgiError as exc:
        log.debug("VERBOSE failed on %s: %s", session.request.channel, exc)
