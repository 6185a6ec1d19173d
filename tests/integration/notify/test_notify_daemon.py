"""Through the whole daemon: a caller leaves a voicemail on the simulated PBX; the e-mail
(with the recording fetched over ARI and converted) and the signed webhook arrive."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest

from pbx_service.audio.tools import audio_segment
from pbx_service.config import Config
from pbx_service.simulator.driver import AgentBehaviour, Press, Wait, WaitPlayback
from tests.fixtures.pbx import Pbx
from tests.integration.notify.support import MailSink, WebhookReceiver, until, wait_status

WEBSITE = "84952223344"

pytestmark = pytest.mark.skipif(
    "notify" not in Config.model_fields,
    reason="Config has no notify: section yet: the lead wires it, the writer and the daemon "
    "(see the notify report)",
)


async def test_voicemail_left_on_the_pbx_is_mailed_and_posted(
    pbx: Pbx, smtp: tuple[MailSink, int], receiver: WebhookReceiver
) -> None:
    sink, port = smtp
    notify: dict[str, Any] = {
        "email": {
            "host": "127.0.0.1",
            "port": port,
            "security": "none",
            "from": "pbx@example.com",
            "to": ["sales@example.com"],
        },
        "webhooks": [{"url": receiver.url, "secret": receiver.secret, "timeout": 2}],
        "retry_initial_seconds": 0.1,
        "retry_max_seconds": 0.5,
        "lease_seconds": 60,
    }
    agents = [pbx.agent(n, AgentBehaviour.never_answers()) for n in ("a901", "a902")]
    await pbx.start_daemon(pbx.config(reception=agents, ring_timeout=1.5, notify=notify))

    call = await pbx.driver.place_call(
        WEBSITE,
        "+79161234567",
        caller_name="Иван Петров",
        steps=[WaitPlayback("leave-message", 15), Wait(2.0), Press("#"), Wait(3)],
    )
    await asyncio.wait_for(call.ended, 30)
    [row] = await pbx.wait_ended(1)
    assert row["outcome"] == "voicemail"

    await until(lambda: len(sink.messages) == 1 and len(receiver.processed) == 1, timeout=20)
    [message] = sink.messages
    assert message["Subject"] == "Voicemail from Иван Петров +7 916 123-45-67 (website)"
    [part] = list(message.iter_attachments())
    assert part.get_content_type() == "audio/mpeg"
    audio = part.get_content()
    assert isinstance(audio, bytes)
    assert audio_segment().from_file(io.BytesIO(audio), format="mp3").duration_seconds > 0.5
    [hit] = receiver.hits
    assert hit.event == "voicemail" and receiver.bad_signatures == 0
    assert hit.body["data"]["call_id"] == str(row["id"])
    assert hit.body["data"]["voicemail"]["name"] == row["voicemail"]
    await wait_status(pbx.database_url, "delivered", count=2)
