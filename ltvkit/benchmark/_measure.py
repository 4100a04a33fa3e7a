"""Measurement: wall-clock time, peak memory and threads of one fit and predict.

``ltvkit benchmark`` reports the peak increase of the process's resident memory (RSS,
sampled every 5 ms from ``/proc/self/statm``) while a model fits and predicts; this
counts native allocations (torch, LightGBM, XGBoost) that ``tracemalloc`` cannot see.
Threads: boosters take ``n_jobs``, deep models torch's thread count, set here for the
run and restored after it.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

__all__: list[str] = []


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _resolve_n_jobs(n_jobs: int | None) -> int | None:
    if n_jobs is None:
        return None
    if not _is_int(n_jobs) or (n_jobs < 1 and n_jobs != -1):
        raise ValueError(f"n_jobs must be None, -1 or an integer >= 1, got {n_jobs!r}.")
    return (os.cpu_count() or 1) if n_jobs == -1 else int(n_jobs)


@contextlib.contextmanager
def _torch_threads(n_jobs: int | None) -> Iterator[None]:
    """Run the models with ``n_jobs`` torch threads (if given), then restore the setting.

    Deep models take their thread count from torch, not from an ``n_jobs`` parameter. On
    a busy machine, torch's default (one thread per core) oversubscribes the cores: the
    CDNOW ``--quick`` run took 216 s instead of 33 s on 2 shared cores.
    """
    torch = sys.modules.get("torch")
    if n_jobs is None or torch is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n_jobs)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_STATM = Path("/proc/self/statm")


def _rss_bytes() -> int | None:
    """Resident set size of this process from /proc (Linux), else None."""
    try:
        return int(_STATM.read_text().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


def _release_free_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``).

    Without it, memory freed by an earlier model stays in the process (RSS) and a later
    model can reuse it without any RSS increase, so its peak would read as ~0.
    """
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (e.g. musl): RSS stays a lower bound
            pass


class _Monitor:
    """Samples the process memory in a thread while a model fits and predicts.

    On Linux it reads the resident set size (``/proc/self/statm``) every 5 ms and reports
    the peak increase over the value at ``start``: this counts every allocation (numpy,
    torch, LightGBM/XGBoost native memory), unlike ``tracemalloc``, which only sees Python
    allocations. Elsewhere it falls back to ``tracemalloc``'s peak (Python allocations
    only, so torch tensors are missed). The same thread redraws the progress line.
    """

    def __init__(self, redraw: Callable[[], None] | None) -> None:
        self._redraw = redraw
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_rss = 0
        self.peak_rss = 0
        self._tracing = False

    def __enter__(self) -> _Monitor:
        _release_free_memory()
        rss = _rss_bytes()
        if rss is None:
            self._tracing = not tracemalloc.is_tracing()
            if self._tracing:
                tracemalloc.start()
            tracemalloc.reset_peak()
        else:
            self._start_rss = self.peak_rss = rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        last_draw = 0.0
        while not self._stop.wait(0.005):
            rss = _rss_bytes()
            if rss is not None and rss > self.peak_rss:
                self.peak_rss = rss
            now = time.monotonic()
            if self._redraw is not None and now - last_draw > 0.25:
                last_draw = now
                self._redraw()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        rss = _rss_bytes()
        if rss is not None:
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_mb = (self.peak_rss - self._start_rss) / 2**20
        else:
            self.peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
            if self._tracing:
                tracemalloc.stop()
