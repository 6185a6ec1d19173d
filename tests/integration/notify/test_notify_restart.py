"""Restarts, crashes and two daemons: every notification is delivered, and never twice
under one delivery id as the receiver counts them."""

from __future__ import annotations

import asyncio
from collections import Counter

from pbx_service.notify.dispatcher import NotificationDispatcher
from tests.fixtures.database import RestartablePostgres
from tests.integration.notify.conftest import DispatcherFactory, SettingsFactory
from tests.integration.notify.support import (
    MailSink,
    WebhookReceiver,
    abandoned_call,
    log_calls,
    rows,
    until,
    voicemail_call,
    wait_status,
)


async def test_close_hands_unfinished_sends_back_for_the_next_run(
    database_url: str,
    receiver: WebhookReceiver,
    make_settings: SettingsFactory,
    start_dispatcher: DispatcherFactory,
) -> None:
    receiver.plan = [("hang", 5.0)]
    # A long lease: only the hand-back can make the second run send it quickly.
    settings = make_settings(with_email=False, lease_seconds=60, webhook={"timeout": 10})
    await log_calls(database_url, settings, voicemail_call())
    first = await start_dispatcher(settings, close_grace_seconds=0.1)
    await until(lambda: len(receiver.hits) == 1, what="the first POST")
    await first.close()
    [row] = await rows(database_url)
    assert row["status"] == "pending" and row["attempts"] == 1

    await start_dispatcher(settings)
    [row] = await wait_status(database_url, "delivered", timeout=5)
    assert receiver.processed == {str(row["id"]): 1}
    assert [hit.attempt for hit in receiver.hits] == [1, 2]


async def test_a_crash_mid_send_is_sent_again_after_the_lease_exactly_once(
    database_url: str,
    receiver: WebhookReceiver,
    make_settings: SettingsFactory,
    start_dispatcher: DispatcherFactory,
) -> None:
    receiver.plan = [("hang", 5.0)]  # the first POST never gets an answer
    settings = make_settings(with_email=False, lease_seconds=1.0, webhook={"timeout": 0.9})
    await log_calls(database_url, settings, voicemail_call())
    crashed = await start_dispatcher(settings)
    await until(lambda: len(receiver.hits) == 1, what="the first POST")
    await crashed.abort()
    [row] = await rows(database_url)
    assert row["status"] == "sending"  # left as a crash leaves it

    await start_dispatcher(settings)
    await asyncio.sleep(0.5)
    assert len(receiver.hits) == 1, "taken over before the lease ran out"
    [row] = await wait_status(database_url, "delivered", timeout=5)
    assert receiver.processed == {str(row["id"]): 1}
    assert row["attempts"] == 2


async def test_a_crash_after_the_receiver_took_it_repeats_the_delivery_id(
    database_url: str,
    receiver: WebhookReceiver,
    make_settings: SettingsFactory,
    start_dispatcher: DispatcherFactory,
) -> None:
    # At least once: the receiver processed it, the answer was lost with the sender. The
    # resend carries the same X-PBX-Delivery, so a receiver that dedupes sees it once.
    receiver.plan = [("ack-hang", 5.0)]
    settings = make_settings(with_email=False, lease_seconds=1.0, webhook={"timeout": 0.9})
    await log_calls(database_url, settings, voicemail_call())
    crashed = await start_dispatcher(settings)
    await until(lambda: len(receiver.hits) == 1)
    await crashed.abort()
    await start_dispatcher(settings)
    [row] = await wait_status(database_url, "delivered", timeout=5)
    assert {hit.delivery for hit in receiver.hits} == {str(row["id"])}
    assert list(receiver.processed) == [str(row["id"])]


async def test_e_mail_resent_after_a_crash_keeps_its_message_id(
    database_url: str,
    smtp: tuple[MailSink, int],
    make_settings: SettingsFactory,
    start_dispatcher: DispatcherFactory,
) -> None:
    sink, _port = smtp
    settings = make_settings(with_webhook=False, lease_seconds=2.0)
    await log_calls(database_url, settings, voicemail_call())
    gate = asyncio.Event()
    fetches = 0

    async def slow_fetch(name: str) -> bytes | None:
        nonlocal fetches
        fetches += 1
        if fetches == 1:
            await gate.wait()  # the crash comes while the recording is being fetched
        return None

    crashed = await start_dispatcher(settings, fetch_audio=slow_fetch)
    await until(lambda: fetches == 1)
    await crashed.abort()
    assert not sink.messages
    await start_dispatcher(settings, fetch_audio=slow_fetch)
    [row] = await wait_status(database_url, "delivered", timeout=6)
    assert sink.by_message_id() == {f"<{row['id']}@example.com>": 1}


async def test_notifications_queued_while_no_dispatcher_runs_are_sent_at_start(
    database_url: str,
    smtp: tuple[MailSink, int],
    receiver: WebhookReceiver,
    make_settings: SettingsFactory,
    start_dispatcher: DispatcherFactory,
) -> None:
    sink, _port = smtp
    settings = make_settings()
    await log_calls(database_url, settings, voicemail_call(0))
    first = await start_dispatcher(settings)
    await wait_status(database_url, "delivered", count=2)
    await first.close()
    await log_calls(
        database_url, settings, abandoned_call(1, caller_number="+79990000001"), voicemail_call(2)
    )
    await start_dispatcher(settings)
    await wait_status(database_url, "delivered", count=6)
    assert len(sink.messages) == 3 and sink.by_message_id().most_common(1)[0][1] == 1
    assert len(receiver.processed) == 3 and set(receiver.processed.values()) == {1}


async def test_two_dispatchers_never_deliver_one_notification_twice(
    database_url: str,
    smtp: tuple[MailSink, int],
    receiver: WebhookReceiver,
    make_settings: SettingsFactory,
    start_dispatcher: DispatcherFactory,
) -> None:
    sink, _port = smtp
    settings = make_settings()
    calls = [abandoned_call(n, caller_number=f"+7999{n:07d}") for n in range(60)]
    a = await start_dispatcher(settings, poll_interval=0.01, batch_size=5, node="a")
    b = await start_dispatcher(settings, poll_interval=0.01, batch_size=5, node="b")
    for start in range(0, len(calls), 10):  # arriving while both run
        await log_calls(database_url, settings, *calls[start : start + 10])
    await wait_status(database_url, "delivered", count=120, timeout=30)
    assert receiver.processed == Counter({d: 1 for d in receiver.processed})
    assert len(receiver.processed) == 60 and len(receiver.hits) == 60
    assert len(sink.messages) == 60 and set(sink.by_message_id().values()) == {1}
    assert a.stats["delivered"] + b.stats["delivered"] == 120
    assert a.stats["lost_claims"] == b.stats["lost_claims"] == 0
    senders = Counter(r["claimed_by"] for r in await rows(database_url))
    assert set(senders) <= {"a", "b"}


async def test_dispatcher_rides_out_a_database_restart(
    restartable_postgres: RestartablePostgres,
    receiver: WebhookReceiver,
    make_settings: SettingsFactory,
) -> None:
    url = restartable_postgres.url
    settings = make_settings(with_email=False)
    dispatcher = NotificationDispatcher(
        url, settings, poll_interval=0.05, reconnect_max_seconds=0.2
    )
    await dispatcher.start()
    try:
        await log_calls(url, settings, voicemail_call(0))
        await until(lambda: len(receiver.processed) == 1)
        await asyncio.to_thread(restartable_postgres.stop)
        await until(lambda: dispatcher.stats["database_errors"] > 0, what="a database error")
        await asyncio.to_thread(restartable_postgres.start)
        await log_calls(url, settings, voicemail_call(1, caller_number="+79990000002"))
        await until(lambda: len(receiver.processed) == 2, what="delivery after the restart")
        assert dispatcher.task is not None and not dispatcher.task.done()
    finally:
        await dispatcher.close()
