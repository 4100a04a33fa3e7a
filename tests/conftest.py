"""Shared pytest set-up.

Threads: one per worker by default, so parallel workers don't oversubscribe. Set
``OMP_NUM_THREADS`` to run the suite with more (torch, XGBoost and LightGBM then use that
many); the suite must pass with 1 thread and with many.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("LTVKIT_FAST_EXAMPLES", "1")


def pytest_configure(config: pytest.Config) -> None:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return
    torch.set_num_threads(max(1, int(os.environ["OMP_NUM_THREADS"])))


# --- hypothesis profiles ----------------------------------------------------------------
# "ci" (the default) is small and derandomized, so every machine runs the same examples;
# LTVKIT_FUZZ_PROFILE=long explores (random seeds, 50x the examples) for a benchmark-style
# fuzzing run: `LTVKIT_FUZZ_PROFILE=long pytest tests/test_fuzz.py`. Tests that set their
# own max_examples keep it; tests/test_fuzz.py scales its counts from the profile's.
_FUZZ_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=_FUZZ_HEALTH,
)
settings.register_profile(
    "long",
    max_examples=2000,
    deadline=None,
    derandomize=False,
    suppress_health_check=_FUZZ_HEALTH,
)
settings.load_profile(os.environ.get("LTVKIT_FUZZ_PROFILE", "ci"))
