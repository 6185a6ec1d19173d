"""The simulator against traces recorded from a real Asterisk 22 (one test per trace file).

Each test starts a fresh simulator, replays the trace (see `tests.contract.harness`) and fails
with a readable list of differences. Skipped traces and parts are listed in harness.py; a
skipped trace says why. ``PBX_CONTRACT_TIME_SCALE`` (default 0.25) sets the simulator's
``time_scale`` and the replay pacing: 0.25 plays a 5 s prompt in 1.25 s.
"""

from __future__ import annotations

import importlib
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


def _simulator_class() -> Any:
    for module in ("pbx_service.simulator.server", "pbx_service.simulator"):
        try:
            found = getattr(importlib.import_module(module), "Simulator", None)
        except ImportError:
            continue
        if found is not None:
            return found
    pytest.skip("pbx_service.simulator has no Simulator yet; nothing to check")


def _effective_scale(sim: Any) -> float:
    # When the simulator has no time_scale, pace on real time.
    scale = getattr(sim, "time_scale", None)
    return float(scale) if isinstance(scale, int | float) else 1.0


@pytest.mark.timeout(180)
@pytest.mark.parametrize("trace_path", _trace_params())
async def test_trace(trace_path: pathlib.Path | None) -> None:
    require_reference()
    assert trace_path is not None
    prefix = harness.trace_prefix(trace_path)
    if prefix in harness.TRACE_SKIPS:
        pytest.skip(f"{trace_path.name}: {harness.TRACE_SKIPS[prefix]}")
    cls = _simulator_class()
    simulator = cls(**harness.simulator_kwargs(cls, TIME_SCALE))
    await simulator.start("127.0.0.1", port=0)
    try:
        trace = harness.Trace.load(trace_path)
        replay = harness.Replay(
            trace, harness.origin_of(simulator.base_url), time_scale=_effective_scale(simulator)
        )
        differences = await replay.run()
    finally:
        await simulator.stop()
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
