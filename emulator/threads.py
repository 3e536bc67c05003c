"""Trials on threads: every compiled kernel of the emulator (integer datapath, learning
engine, float reference) runs contiguous blocks of trials through the same ``nogil``
function on a short-lived thread pool, so serial and parallel runs give the same bits."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

__all__ = ["n_threads", "default_parallel", "trial_blocks", "run_threads"]


def n_threads() -> int:
    """Threads of a parallel run: ``NUMBA_NUM_THREADS`` if set, else the usable cores."""
    env = os.environ.get("NUMBA_NUM_THREADS")
    if env:
        return max(1, int(env))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def default_parallel(n_trials: int) -> bool:
    """``parallel=None`` of :func:`emulator.run`: trials on all cores when there are several
    trials and this is the main process (pool workers of a sweep already fill the cores)."""
    import multiprocessing
    return n_trials > 1 and multiprocessing.parent_process() is None


def trial_blocks(B: int, parallel: bool) -> list:
    """Contiguous trial ranges, one per thread (one range when serial)."""
    n = min(B, n_threads()) if parallel else 1
    return [(i * B // n, (i + 1) * B // n) for i in range(n)]


def run_threads(calls) -> list:
    """Run the zero-argument ``calls`` (each a kernel on one block), on threads if several.
    The pool lives for one chunk only: no thread outlives the call (Lava forks later)."""
    if len(calls) == 1:
        return [calls[0]()]
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda f: f(), calls))
