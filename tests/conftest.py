"""Shared pytest set-up.

Threads: one per worker by default, so parallel workers don't oversubscribe. Set
``OMP_NUM_THREADS`` to run the suite with more (torch, XGBoost and LightGBM then use that
many); the suite must pass with 1 thread and with many.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("LTVKIT_FAST_EXAMPLES", "1")


def pytest_configure(config: pytest.Config) -> None:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return
    torch.set_num_threads(max(1, int(os.environ["OMP_NUM_THREADS"])))
