"""Executors: run a list of pure tasks serially, on a local process pool or on a Dask cluster.

A task is a tuple of arguments of a pure function (all randomness from the counter RNG), so
its result does not depend on the executor, the number of workers or the order in which
tasks finish; results come back in task order.  Used by ``natgrad sweep`` and the sharded
experiments.
"""
from __future__ import annotations

import contextlib

from natgrad import interrupt
from natgrad.errors import UsageError

__all__ = ["execute"]


def execute(fn, tasks: list[tuple], executor: str = "local", scheduler: str | None = None,
            workers: int = 2, progress=None) -> list:
    """Run ``fn(*t)`` for every task; results in task order
    whatever the executor."""
    done = 0

    def tick():
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, len(tasks))

    if executor == "serial":
        out = []
        for t in tasks:
            out.append(fn(*t))
            tick()
        return out
    if executor == "local":
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed
        n = max(1, min(workers, len(tasks)))
        # spawn: fresh interpreters.  fork is not safe once the parent has run numba code
        # that started an OpenMP runtime ("fork() called from a process already using GNU
        # OpenMP"), or a Dask client's threads.
        pool = ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=interrupt.ignore_sigint)
        try:
            with interrupt.children_ignore_sigint():   # workers start at the first submit
                futures = [pool.submit(fn, *t) for t in tasks]
            for _ in as_completed(futures):
                tick()
            return [f.result() for f in futures]
        except BaseException:
            # Interrupted or failed: do not wait for the running tasks, stop the workers.
            workers_ = list(getattr(pool, "_processes", {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in workers_:
                proc.terminate()
            for proc in workers_:
                proc.join(timeout=2.0)
            raise
        finally:
            pool.shutdown(wait=True)
    if executor == "dask":
        return _execute_dask(tasks, scheduler, workers, tick, fn)
    raise UsageError(f"--executor must be one of local, dask, serial (got {executor!r})")


def _execute_dask(tasks, scheduler, workers, tick, fn) -> list:
    import logging
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
    else:
        # Workers and nannies start with SIGINT blocked: a Ctrl-C reaches only this process,
        # which closes the cluster (no worker tracebacks).
        with interrupt.children_ignore_sigint(from_other_threads=True):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.CRITICAL)
            client = Client(cluster)
            client.wait_for_workers(workers, timeout=60)
    futures, wait_s = [], 10
    try:
        futures = client.map(fn, *zip(*tasks), pure=False)
        for _ in as_completed(futures):
            tick()
        return client.gather(futures)
    except BaseException:
        wait_s = 1                      # interrupted: the watchdog allows a few seconds
        with contextlib.suppress(Exception):
            client.cancel(futures)
        raise
    finally:
        with contextlib.suppress(Exception):
            client.close(timeout=wait_s)
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close(timeout=wait_s)
