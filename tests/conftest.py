"""Shared fixtures. Building MT10 takes seconds, so each protocol's env is built once per test session."""

from __future__ import annotations

import pytest

from mtrl.envs import MT10


@pytest.fixture(scope="session")
def fixed_env() -> MT10:
    env = MT10("mt10-fixed", seed=7)
    yield env
    env.close()


@pytest.fixture(scope="session")
def official_env() -> MT10:
    env = MT10("mt10", seed=7)
    yield env
    env.close()
