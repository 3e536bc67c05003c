"""The one time loop of every engine: step a batch of trials over ``steps`` Euler steps in
chunks.

An engine (the integer datapath, the learning engine, the float64 reference's compiled loop
or its numpy twin) supplies only its steps over one chunk:

* ``fused(n, done, rows)``: the next ``n`` steps with the spikes drawn inside its compiled
  loop (the engine counts the teacher spikes there); ``None`` when it has no such loop;
* ``chunk(spikes, done, rows)``: the next ``n`` steps on the spike arrays of
  :meth:`emulator.spikes.SpikeSource.next` (called with ``spike_kwargs(n, done)`` if the
  engine has it): used when the task plays a recording, when ``fused`` is off, or when the
  engine has no fused loop;
* optionally ``chunk_end(done)``: called after every chunk (snapshots, metrics, checks).

:func:`drive` owns the chunk sizes (at most ``chunk_steps``, ending at every step
``next_stop`` names), the choice between the two loops, the teacher-spike count of the array
path, the recorded rows of a chunk (:func:`record_rows`) and the progress callback.  Neither
the chunk size nor the stops change any bit: every engine carries its whole state between
chunks.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["record_rows", "record_offsets", "drive", "stops_at", "every_step_and_before"]


def record_rows(done: int, n: int, every: int) -> tuple[int, int]:
    """Rows ``[r0, r1)`` of the record written by steps ``done .. done + n - 1``: step k
    (0-based) is recorded when ``(k + 1) % every == 0``, as row ``(k + 1) // every - 1``;
    ``(0, 0)`` when nothing is recorded (``every`` <= 0)."""
    if every <= 0:
        return 0, 0
    return done // every, (done + n) // every


def record_offsets(done: int, n: int, every: int) -> np.ndarray:
    """Offsets t in ``[0, n)`` of the recorded steps ``done + t`` of a chunk (as
    :func:`record_rows`, in the same order)."""
    if every <= 0:
        return np.zeros(0, np.int64)
    return np.arange((every - (done + 1) % every) % every, n, every)


def stops_at(steps) -> Callable[[int], int]:
    """``next_stop`` of :func:`drive` ending chunks at the sorted event ``steps``."""
    steps = np.unique(np.asarray(steps, np.int64))

    def next_stop(done: int) -> int:
        i = np.searchsorted(steps, done, side="right")
        return int(steps[i]) if i < steps.size else np.iinfo(np.int64).max
    return next_stop


def every_step_and_before(every: int) -> Callable[[int], int]:
    """``next_stop`` ending chunks at every recorded step and at the step before it (the
    learning engine's state snapshots)."""
    def next_stop(done: int) -> int:
        nxt = (done // every + 1) * every
        return nxt - 1 if nxt - 1 > done else nxt
    return next_stop


def drive(engine, src, steps: int, chunk_steps: int, *, record_every: int = 0,
          fused: bool = True, teach: np.ndarray | None = None, next_stop=None,
          progress: Callable[[int], None] | None = None) -> int:
    """Run ``engine`` over ``steps`` steps of ``src`` (a :class:`emulator.spikes.SpikeSource`
    at its first step, or None for an engine that draws its own spikes).

    Parameters
    ----------
    engine : object with ``fused`` and/or ``chunk`` (see the module doc), ``chunk_end`` optional
    src : the spike source of the array path (its ``recorded`` turns the fused loop off: a
        recording is played by ``next``, same bits)
    steps : number of steps (dt each)
    chunk_steps : largest chunk, steps (does not change results)
    record_every : a row is recorded after every ``record_every``-th step (0: none); the
        engine receives each chunk's rows ``(r0, r1)`` from :func:`record_rows`
    fused : use the engine's fused loop when it has one and ``src`` draws its spikes
    teach : (B, M) int64 teacher-spike counts, incremented on the array path
    next_stop : ``done -> next step where a chunk must end`` (e.g. :func:`stops_at`)
    progress : called with the number of steps done after every chunk

    Returns the number of recorded rows written (``steps // record_every``).
    """
    if chunk_steps < 1:
        raise ValueError(f"chunk_steps must be >= 1 (got {chunk_steps})")
    step_fused = getattr(engine, "fused", None)
    use_fused = step_fused is not None and (
        getattr(engine, "chunk", None) is None or (fused and not (src is not None and src.recorded)))
    spike_kwargs = getattr(engine, "spike_kwargs", None)
    chunk_end = getattr(engine, "chunk_end", None)
    done = 0
    while done < steps:
        n = min(chunk_steps, steps - done)
        if next_stop is not None:
            n = min(n, next_stop(done) - done)
        rows = record_rows(done, n, record_every)
        if use_fused:
            step_fused(n, done, rows)
        else:
            spikes = src.next(n, **(spike_kwargs(n, done) if spike_kwargs else {}))
            if teach is not None:
                teach += spikes[1].sum(axis=0, dtype=np.int64)
            engine.chunk(spikes, done, rows)
        done += n
        if chunk_end is not None:
            chunk_end(done)
        if progress is not None:
            progress(done)
    return record_rows(0, steps, record_every)[1]
