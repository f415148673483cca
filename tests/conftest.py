"""Shared test helpers."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(20261128)


pytest_plugins = ["pytester"]
