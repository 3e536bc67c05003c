"""Trials on threads: every compiled kernel of the emulator (integer datapath, learning
engine, float reference) runs contiguous blocks of trials through the same ``nogil``
function on a short-lived thread pool, so serial and parallel runs give the same bits."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["n_threads", "default_parallel", "trial_blocks", "run_threads", "in_blocks"]


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


def in_blocks(n_trials: int, parallel: bool, call, records=(), rows=(0, 0),
              always_buffer: bool = False) -> list:
    """The one trial splitter of the compiled kernels: ``call(b0, b1, bufs)`` on each block
    of :func:`trial_blocks` (on threads when several, :func:`run_threads`); returns the
    calls' results in block order.

    ``records`` holds ``(array, trial_axis)`` pairs the kernel writes rows ``rows = (r0, r1)``
    of (the row axis just before the trial axis).  A single block (unless ``always_buffer``)
    gets ``bufs=None`` and writes them itself; otherwise each block gets C-contiguous arrays of
    its trials and ``r1 - r0`` rows (a trial slice of a record is not contiguous), copied into
    the records once every block is done.
    """
    blocks = trial_blocks(n_trials, parallel)
    if len(blocks) == 1 and not always_buffer:
        return [call(0, n_trials, None)]
    r0, r1 = rows
    views = [(a[(slice(None),) * (ax - 1) + (slice(r0, r1),)], ax) for a, ax in records]
    bufs = [[np.empty(v.shape[:ax] + (b1 - b0,) + v.shape[ax + 1:], v.dtype) for v, ax in views]
            for b0, b1 in blocks]
    out = run_threads([lambda b=b, bb=bb: call(b[0], b[1], bb) for b, bb in zip(blocks, bufs)])
    for (b0, b1), bb in zip(blocks, bufs):
        for (v, ax), buf in zip(views, bb):
            if buf.size:
                v[(slice(None),) * ax + (slice(b0, b1),)] = buf
    return out
