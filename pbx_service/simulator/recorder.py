"""Live recordings of channels and bridges: start, run, finish, write the file."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

from pbx_service.simulator.bridges import Bridge
from pbx_service.simulator.channels import Channel
from pbx_service.simulator.media import (
    NO_MEDIA,
    SILENCE,
    TALK,
    LiveRecording,
    find_stored,
    inside,
    recording_path,
    write_recording,
)

if TYPE_CHECKING:
    from pbx_service.simulator.engine import Engine


def _elapsed(engine: Engine, recording: LiveRecording) -> float:
    """Simulated seconds recorded so far, pauses excluded."""
    now = time.monotonic()
    paused = recording.paused_total
    if recording.paused_since is not None:
        paused += now - recording.paused_since
    real = max(0.0, now - recording.started_at - paused)
    return real / (engine.config.time_scale or 1.0)


def _audio(engine: Engine, owner: Channel | Bridge) -> str:
    """What a recording of `owner` hears right now."""
    if isinstance(owner, Bridge):
        talking = len(owner.channels) >= 2 or any(c.talking for c in owner.channels)
        return TALK if talking else SILENCE
    if owner.talking:
        return TALK
    peer = owner.peer
    if peer is not None:
        # A Local half hears what is played on the other half. When nothing plays there,
        # real Asterisk passes no frames at all (README "transmit_silence"); by default the
        # simulator sends silence like a real caller's line would (`local_idle_media`).
        if peer.playback is None:
            return NO_MEDIA if engine.config.local_idle_media == "none" else SILENCE
        media = peer.playback.media[peer.playback.index]
        return SILENCE if media.startswith("sound:silence/") else TALK
    # A SIP leg (trunk caller, phone) sends RTP all the time: silence when nobody talks.
    return SILENCE


def mark(engine: Engine, recording: LiveRecording, owner: Channel | Bridge) -> None:
    """Close the current audio segment (talking state changes)."""
    elapsed = _elapsed(engine, recording)
    covered = sum(seconds for _, seconds in recording.segments)
    if elapsed > covered:
        kind = recording.audio_now
        if recording.muted and kind == TALK:
            kind = SILENCE
        recording.segments.append((kind, elapsed - covered))
    recording.audio_now = _audio(engine, owner)


def start_recording(engine: Engine, recording: LiveRecording, owner: Channel | Bridge) -> None:
    """RecordingStarted and the watcher task that ends it on limits."""
    recording.state = "recording"
    recording.started_at = time.monotonic()
    recording.audio_now = _audio(engine, owner)
    loop = asyncio.get_running_loop()
    recording.finish = loop.create_future()
    engine.emit_to(engine.target_apps(owner), "RecordingStarted", recording=recording.to_json())
    if isinstance(owner, Channel):
        for party in (owner, owner.peer):
            if party is not None and party.transcript is not None:
                party.transcript.recordings.append(
                    {
                        "name": recording.name,
                        "target_uri": recording.target_uri,
                        "started_at": engine.now(),
                        "finished_at": None,
                        "state": "recording",
                    }
                )
    engine.spawn(_watch(engine, recording, owner), f"sim-recording-{recording.name}")


async def _watch(engine: Engine, recording: LiveRecording, owner: Channel | Bridge) -> None:
    step = 0.05
    while recording.state in ("recording", "paused"):
        await engine.sleep(step)
        if recording.state not in ("recording", "paused"):
            return
        if recording.paused:
            continue
        mark(engine, recording, owner)
        elapsed = _elapsed(engine, recording)
        if recording.max_duration and elapsed >= recording.max_duration:
            finish_recording(engine, recording, "done")
            return
        if recording.max_silence:
            silent = 0.0
            for kind, seconds in reversed(recording.segments):
                if kind != SILENCE:
                    break
                silent += seconds
            # Only silence frames count: without any media frames detection never fires.
            if silent >= recording.max_silence:
                finish_recording(engine, recording, "done")
                return


def finish_recording(engine: Engine, recording: LiveRecording, how: str) -> None:
    """Stop (`done`) or cancel (`cancel`: file removed) a live recording."""
    if recording.state not in ("recording", "paused", "queued"):
        return
    owner = engine.recording_owner.get(recording.name)
    started = recording.state != "queued"
    if owner is not None and started:
        mark(engine, recording, owner)
    recording.state = "done"
    segments = list(recording.segments)
    if recording.max_silence:
        recording.report_silence = True
        while segments and segments[-1][0] != TALK:
            segments.pop()  # Asterisk trims trailing silence
    total = sum(seconds for kind, seconds in segments if kind != NO_MEDIA)
    recording.talking_duration = sum(s for kind, s in segments if kind == TALK)
    recording.silence_duration = total - recording.talking_duration
    recording.duration = total
    path = recording_path(engine.config.recordings_dir, recording.name, recording.format)
    if how == "cancel":
        with contextlib.suppress(OSError):
            path.unlink()
    elif recording.write_failed or not inside(engine.config.recordings_dir, path):
        recording.duration = 0
    else:
        try:
            append = recording.if_exists == "append"
            write_recording(path, recording.format, segments, append)
            if append:
                from pbx_service.simulator.media import wav_duration

                if recording.format in ("wav", "wav16"):
                    recording.duration = wav_duration(path)
        except OSError:
            recording.duration = 0
    if recording.finish is not None and not recording.finish.done():
        recording.finish.set_result(how)
    engine.recordings.pop(recording.name, None)
    engine.recording_owner.pop(recording.name, None)
    if isinstance(owner, Channel) and owner.recording is recording:
        owner.recording = None
    if isinstance(owner, Bridge) and owner.recording is recording:
        owner.recording = None
    if owner is not None:
        engine.emit_to(
            engine.target_apps(owner), "RecordingFinished", recording=recording.finished_json()
        )
        if isinstance(owner, Bridge):
            engine.update_bridge_peers(owner)  # then the Recorder channel leaves
        if isinstance(owner, Channel):
            for party in (owner, owner.peer):
                if party is None or party.transcript is None:
                    continue
                for entry in reversed(party.transcript.recordings):
                    if entry["name"] == recording.name and entry["finished_at"] is None:
                        entry["finished_at"] = engine.now()
                        entry["state"] = "done" if how != "cancel" else "canceled"
                        entry["duration"] = round(recording.duration, 3)
                        break


def check_new_recording(engine: Engine, name: str, fmt: str, if_exists: str) -> None:
    """Name/format/ifExists checks shared by channel and bridge recording."""
    from pbx_service.simulator.engine import AriError

    if name in engine.recordings:
        raise AriError(409, f"Recording '{name}' already exists and can not be overwritten")
    if if_exists in ("fail",):
        existing = find_stored(engine.config.recordings_dir, name)
        if existing is not None and existing.suffix == f".{fmt}":
            raise AriError(409, f"Recording '{name}' already exists and can not be overwritten")
