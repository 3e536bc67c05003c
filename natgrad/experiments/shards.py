"""Trial shards of an experiment: run on a local process pool or a Dask cluster, cached on
disk so that an interrupted paper-scale run resumes where it stopped.

A shard is a pure function of ``(experiment, parameters, seed, config, trials)``: every
random bit comes from the counter RNG indexed by global trial ids, so a trial's numbers do
not depend on the shard it runs in, and the merged result is identical for any sharding,
executor or order of completion (``tests/test_shards.py``).  Each finished shard is written
to ``CACHE/<key>.pkl`` (key: a hash of its inputs and of natgrad's version) by a temporary
file and a rename, so a cache file is either complete or absent.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import numpy as np

__all__ = ["shard_ranges", "run_shards", "shard_key", "cached_shards"]


def shard_ranges(n_trials: int, shard_trials: int) -> list[np.ndarray]:
    """Consecutive trial ids in shards of at most ``shard_trials``."""
    if shard_trials < 1:
        raise ValueError(f"shard_trials must be >= 1 (got {shard_trials})")
    ids = np.arange(n_trials, dtype=np.int64)
    return [ids[i:i + shard_trials] for i in range(0, n_trials, shard_trials)]


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("natgrad")
    except Exception:  # noqa: BLE001
        return "unknown"


def shard_key(fn_name: str, args: tuple, trials: np.ndarray) -> str:
    """Hash of a shard's inputs (function, JSON-able arguments, trial ids, natgrad version)."""
    blob = json.dumps([fn_name, args, [int(trials[0]), int(trials[-1]), int(trials.size)],
                       _version()], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _cached_call(fn, args: tuple, trials, cache: str | None):
    """Run one shard, or load it from the cache; worker side of :func:`run_shards`."""
    trials = np.asarray(trials, np.int64)
    path = None
    if cache:
        path = Path(cache) / f"{shard_key(fn.__module__ + '.' + fn.__name__, args, trials)}.pkl"
        if path.exists():
            with open(path, "rb") as fh:
                return pickle.load(fh)
    out = fn(*args, trials)
    if path is not None:
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "wb") as fh:
            pickle.dump(out, fh)
        os.replace(tmp, path)
    return out


def cached_shards(fn, args: tuple, shards: list[np.ndarray], cache: str | Path) -> list:
    """The shards of ``shards`` whose result is already in ``cache`` (in order)."""
    name = fn.__module__ + "." + fn.__name__
    return [s for s in shards if (Path(cache) / f"{shard_key(name, args, np.asarray(s))}.pkl").exists()]


def run_shards(fn, args: tuple, shards: list[np.ndarray], executor: str = "serial",
               workers: int = 2, scheduler: str | None = None, cache: str | Path | None = None,
               progress=None) -> list:
    """``fn(*args, trials)`` for every shard, results in shard order.

    ``executor``: ``serial`` (this process), ``local`` (a process pool of ``workers``) or
    ``dask`` (``scheduler`` address, or a LocalCluster of ``workers``).  ``cache``: folder of
    finished shards (created); shards found there are not recomputed.  ``fn`` must be a
    module-level function and ``args`` JSON-able (the cache key) and picklable.
    """
    from natgrad.sweep import execute
    if cache is not None:
        Path(cache).mkdir(parents=True, exist_ok=True)
    tasks = [(fn, args, [int(t) for t in s], None if cache is None else str(cache))
             for s in shards]
    return execute(tasks, executor=executor, scheduler=scheduler, workers=workers,
                   progress=progress, fn=_cached_call)
