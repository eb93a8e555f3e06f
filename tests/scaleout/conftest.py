"""Fixtures of the Redis scale-out tests."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def name() -> str:
    """A fresh campaign name per test: tests never see each other's keys."""
    return f"t-{uuid.uuid4().hex[:12]}"
