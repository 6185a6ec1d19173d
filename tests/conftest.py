"""Shared fixtures. Each area's fixtures live in tests/fixtures/<area>.py."""

import pathlib

import pytest

pytest_plugins: list[str] = ["tests.fixtures.database", "tests.fixtures.pbx"]

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the benchmark-script tests last: each starts a tree of processes (PostgreSQL, the
    simulator, the daemon) whose load and shutdown can upset the timing of the trace replays
    that would otherwise come right after them."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/benchmarks/"))
