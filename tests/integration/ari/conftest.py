"""Fixtures for the ARI client's integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .fake_ari import FakeAri, serve_fake_ari


@pytest.fixture
async def fake_ari() -> AsyncIterator[FakeAri]:
    """A fresh ARI-shaped server on 127.0.0.1:0."""
    async with serve_fake_ari() as fake:
        yield fake
