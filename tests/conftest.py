"""Shared fixtures. Each area's fixtures live in tests/fixtures/<area>.py."""

import pathlib

pytest_plugins: list[str] = ["tests.fixtures.database", "tests.fixtures.pbx"]

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
