"""Emulator speed in synapse-steps per second (not a test).

* the paper's structure as baseline: one trial, a Python loop per step, float64
  (the numpy reference ``emulator.reference.Rule('approx')`` called once per step);
* the float64 run ``emulator.run('float64', ...)`` (compiled loop of the reference) against the
  integer run on the same task (Fig 3F, 4 trials, N = 100, 40000 steps);
* the integer emulator, numpy backend and compiled (numba, trials in parallel) backend,
  at B = 1, 100 and 1000 trials of the Fig 3F task (N = 100, M = 1);
* the 1000 -> 500 scenario of the Zenke & Ganguli slides (N = 1000 shared by M = 500).

    uv run python benchmarks/bench_emulator.py [--config loihi2]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from emulator import runner as R
from emulator.reference import Rule
from emulator.spikes import SpikeSource
from emulator.task import fig3_task


def paper_structure(steps):
    """Synapse-steps/s of one trial stepped in Python with the numpy float reference."""
    task = fig3_task(n_trials=1, N=100, seed=0)
    rule = Rule("approx", task.rates, task.params, task.f, R.default_eta())
    t0 = time.perf_counter()
    _, Y, x = SpikeSource(task, 0).next(steps, return_usp=True)
    y = Y.astype(np.float64)
    W = task.w_init.copy()
    for t in range(steps):
        W += rule(W, x[t], y[t])
    return 100 * steps / (time.perf_counter() - t0)


def float_vs_integer(cfg, steps=40_000):
    """Wall time [s] of float64 and of ``cfg`` on fig3_task(n_trials=4, N=100) (warm)."""
    task = fig3_task(n_trials=4, N=100, seed=0)
    out = {}
    for name in ("float64", cfg):
        R.run(name, task, 10, 0)                                  # compile and warm caches
        t0 = time.perf_counter()
        R.run(name, task, steps, 0)
        out[name] = time.perf_counter() - t0
    return out


def rate(cfg, b, m, n, steps, backend="numba", parallel=False):
    """Synapse-steps/s of a whole run (spike generation included), and of the kernel alone."""
    task = fig3_task(n_trials=b, N=n, M=m, seed=0)
    R.run(cfg, task, 2, 0, backend=backend, parallel=parallel)   # compile and warm caches
    t0 = time.perf_counter()
    R.run(cfg, task, steps, 0, backend=backend, chunk_steps=min(steps, 2000), parallel=parallel)
    total = time.perf_counter() - t0
    t0 = time.perf_counter()
    SpikeSource(task, 0).next(steps) if b * m * n * steps <= 4e8 else None
    spikes = time.perf_counter() - t0
    syn = b * m * n * steps
    return syn / total, syn / max(total - spikes, 1e-9)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="loihi2")
    cfg = ap.parse_args().config
    base = paper_structure(2000)
    print(f"baseline (paper structure: 1 trial, Python loop per step, float64): "
          f"{base:.3g} synapse-steps/s")
    print(f"\n| backend | B x M x N | synapse-steps/s (whole run) | x baseline "
          f"| without spike generation |")
    print("|---|---|---|---|---|")
    rows = [("numpy", 1, 1, 100, 1000), ("numpy", 100, 1, 100, 200), ("numpy", 1000, 1, 100, 50),
            ("numba", 1, 1, 100, 20000), ("numba", 100, 1, 100, 2000),
            ("numba", 1000, 1, 100, 400), ("numba parallel", 1000, 1, 100, 400),
            ("numba", 1, 500, 1000, 100)]
    for backend, b, m, n, steps in rows:
        whole, kernel = rate(cfg, b, m, n, steps, backend.split()[0], "parallel" in backend)
        print(f"| {backend} | {b} x {m} x {n} | {whole:.3g} | {whole / base:.0f} | {kernel:.3g} |")
    times = float_vs_integer(cfg)
    print(f"\nfig3_task(n_trials=4, N=100), 40000 steps, whole run: "
          + ", ".join(f"{k} {v:.2f} s" for k, v in times.items()))


if __name__ == "__main__":
    main()
