"""The voicemail as an e-mail attachment: fetched through a callable the daemon gives, then
encoded for people (MP3 or Ogg) with `pbx_service.audio.convert`."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from pbx_service.ari.errors import AriHTTPError
from pbx_service.audio.convert import to_mp3, to_ogg
from pbx_service.audio.errors import AudioError
from pbx_service.config.notify import EmailSettings
from pbx_service.notify.errors import DeliveryError
from pbx_service.notify.render import Attachment, attachment_name

FetchAudio = Callable[[str], Awaitable[bytes | None]]
"""``fetch_audio(name)``: the stored recording ``name`` (as in ``calls.voicemail``) as bytes,
None when it does not exist. May raise when it cannot tell (Asterisk unreachable)."""


class _StoredRecordings(Protocol):
    async def get_stored_recording_file(self, name: str) -> bytes: ...


def ari_audio_fetcher(rest: _StoredRecordings) -> FetchAudio:
    """A `FetchAudio` over ARI ``GET /recordings/stored/{name}/file`` (404 → None)."""

    async def fetch(name: str) -> bytes | None:
        try:
            return await rest.get_stored_recording_file(name)
        except AriHTTPError as exc:
            if exc.status == 404:
                return None
            raise

    return fetch


def encode(wav: bytes, fmt: str) -> bytes:
    """``wav`` encoded as ``fmt`` (mp3 or ogg). Blocking: run it in a thread."""
    with tempfile.TemporaryDirectory(prefix="pbx-notify-") as tmp:
        path = Path(tmp) / "voicemail.wav"
        path.write_bytes(wav)
        return to_mp3(path) if fmt == "mp3" else to_ogg(path)


async def voicemail_attachment(
    payload: Mapping[str, Any],
    settings: EmailSettings,
    fetch_audio: FetchAudio | None,
    *,
    last_attempt: bool,
) -> tuple[Attachment | None, str | None]:
    """The attachment for the payload's voicemail and a note for the body when there is none
    (or it is not in the configured format).

    A fetch that fails raises `DeliveryError` so the e-mail is retried with the recording,
    except on the last attempt, when the e-mail goes without it rather than not at all.
    """
    voicemail = payload.get("voicemail")
    if not isinstance(voicemail, Mapping) or settings.attach_format == "none":
        return None, None
    name = str(voicemail.get("name") or "")
    if fetch_audio is None:
        return None, "this notifier has no access to recordings"
    try:
        raw = await fetch_audio(name)
    except Exception as exc:
        if not last_attempt:
            raise DeliveryError(f"cannot fetch voicemail {name}: {exc}") from exc
        return None, f"the recording could not be fetched ({exc})"
    if raw is None:
        return None, "the recording was not found on the PBX"
    fmt: str = settings.attach_format
    note: str | None = None
    try:
        content = await asyncio.to_thread(encode, raw, fmt)
    except AudioError as exc:
        if raw[:4] != b"RIFF":
            return None, f"the recording could not be converted ({exc})"
        # An unconverted WAV still lets a person listen.
        content, fmt, note = raw, "wav", f"attached as WAV: conversion to {fmt} failed ({exc})"
    if len(content) > settings.max_attachment_bytes:
        size = len(content) / 1024 / 1024
        return None, (
            f"the recording ({size:.1f} MB) is over the {settings.max_attachment_mb:g} MB "
            f"attachment limit; it is stored on the PBX as {name}"
        )
    return Attachment(attachment_name(payload, fmt), content, fmt), note
