"""The simulator against traces recorded from a real Asterisk 22 (one test per trace file).

Each test starts a fresh simulator, replays the trace (see `tests.contract.harness`) and fails
with a readable list of differences. Skipped traces and parts are listed in harness.py; a
skipped trace says why. ``PBX_CONTRACT_TIME_SCALE`` (default 0.25) sets the simulator's
``time_scale`` and the replay pacing: 0.25 plays a 5 s prompt in 1.25 s.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import pytest

from tests.contract import harness
from tests.contract.reference import reference_available, reference_dir, require_reference

TIME_SCALE = float(os.environ.get("PBX_CONTRACT_TIME_SCALE", "0.25"))


def _trace_params() -> list[Any]:
    if not reference_available():
        # One placeholder so the skip (with its reason) shows up in the test output.
        return [pytest.param(None, id="no-reference")]
    return [pytest.param(p, id=p.stem) for p in harness.trace_files(reference_dir() / "traces")]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("trace_path", _trace_params())
async def test_trace(trace_path: pathlib.Path | None) -> None:
    require_reference()
    assert trace_path is not None
    prefix = harness.trace_prefix(trace_path)
    if prefix in harness.TRACE_SKIPS:
        pytest.skip(f"{trace_path.name}: {harness.TRACE_SKIPS[prefix]}")
    cls = harness.find_simulator_class()
    if cls is None:
        pytest.skip("pbx_service.simulator has no Simulator yet; nothing to check")
    trace = harness.Trace.load(trace_path)
    replay = await harness.replay_on_simulator(trace, cls, TIME_SCALE)
    differences = replay.differences
    skipped = harness.describe_skips(prefix)
    if differences:
        pytest.fail(
            f"{len(differences)} difference(s) replaying {trace.name} "
            f"(time_scale {replay.scale}):\n"
            + harness.render(differences, replay.info)
            + "\nskipped parts:\n  "
            + "\n  ".join(skipped),
            pytrace=False,
        )


def test_skip_table_names_every_reason() -> None:
    """Every skip carries a reason, and segment ranges are well-formed."""
    lines = harness.describe_skips()
    assert lines
    for (_, first, last), reason in harness.SEGMENT_SKIPS.items():
        assert first <= last and reason
    for reason in [*harness.TRACE_SKIPS.values(), *harness.IGNORED_KINDS.values()]:
        assert reason.strip()


def test_every_line_kind_is_handled_or_listed() -> None:
    """A new line kind in the traces must be replayed or listed with a reason."""
    ref = require_reference()
    handled = {"rest", "ws_event", "ws_connect", "ws_closed", "ws_close_requested"}
    for path in harness.trace_files(ref / "traces"):
        if harness.trace_prefix(path) in harness.TRACE_SKIPS:
            continue
        kinds = {line.kind for line in harness.Trace.load(path).lines}
        unknown = kinds - handled - set(harness.IGNORED_KINDS)
        assert not unknown, f"{path.name}: line kinds {unknown} neither replayed nor skipped"


def _skipped_parts() -> list[Any]:
    parts: list[Any] = []
    for (prefix, first, last), reason in harness.SEGMENT_SKIPS.items():
        parts.append(
            pytest.param(
                f"trace {prefix} seq {first}-{last}: {reason}", id=f"{prefix}-seq{first}-{last}"
            )
        )
    for (prefix, seq), reason in harness.REQUEST_SKIPS.items():
        parts.append(pytest.param(f"trace {prefix} seq {seq}: {reason}", id=f"{prefix}-seq{seq}"))
    for n, (pattern, reason) in enumerate(harness.LIST_LENGTH_FREE.items()):
        parts.append(
            pytest.param(
                f"length of the listing {pattern!r} not compared: {reason}", id=f"listing{n}"
            )
        )
    if reference_available():
        for path in harness.trace_files(reference_dir() / "traces"):
            prefix = harness.trace_prefix(path)
            if prefix in harness.TRACE_SKIPS:
                continue
            kinds: dict[str, int] = {}
            for line in harness.Trace.load(path).lines:
                if line.kind in harness.IGNORED_KINDS and line.kind not in ("meta", "note"):
                    kinds[line.kind] = kinds.get(line.kind, 0) + 1
            for kind, count in kinds.items():
                parts.append(
                    pytest.param(
                        f"{path.name}: {count} {kind!r} line(s) not compared: "
                        f"{harness.IGNORED_KINDS[kind]}",
                        id=f"{prefix}-{kind}",
                    )
                )
    return parts


@pytest.mark.parametrize("part", _skipped_parts())
def test_skipped_part(part: str) -> None:
    """One skipped entry per part of a trace that is not replayed, so the output lists them."""
    pytest.skip(part)
