"""Where the recorded ARI reference lives, and a skip when it is absent.

The reference (official Swagger schema and traces from a real Asterisk 22) is never copied into
the project: it is read from ``<repo>/../shared/ari-reference`` or from the directory named by
the ``PBX_ARI_REFERENCE`` environment variable.
"""

from __future__ import annotations

import os
import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
ENV_VAR = "PBX_ARI_REFERENCE"


def reference_dir() -> pathlib.Path:
    """The reference folder (it may not exist: check with `reference_available`)."""
    override = os.environ.get(ENV_VAR)
    if override:
        return pathlib.Path(override)
    return REPO_ROOT.parent / "shared" / "ari-reference"


def reference_available() -> bool:
    """True when both ``api-docs/`` and ``traces/`` are present."""
    ref = reference_dir()
    return (ref / "api-docs").is_dir() and (ref / "traces").is_dir()


def require_reference() -> pathlib.Path:
    """Return the reference folder, or skip the calling test saying how to provide it."""
    ref = reference_dir()
    if not reference_available():
        pytest.skip(
            f"ARI reference not found at {ref} (needs api-docs/ and traces/); "
            f"set {ENV_VAR} to the folder holding the recorded Asterisk 22 schema and traces"
        )
    return ref
