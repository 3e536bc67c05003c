"""Emulator speed in synapse-steps per second (not a test).

* the paper's structure as baseline: one trial, a Python loop per step, float64
  (the numpy reference ``emulator.reference.Rule('approx')`` called once per step);
* the float64 run ``emulator.run('float64', ...)`` (compiled loop of the reference) against the
  integer run on the same task (Fig 3F, 4 trials, N = 100, 40000 steps);
* the integer emulator, numpy backend and compiled (numba, trials in parallel) backend,
  at B = 1, 100 and 1000 trials of the Fig 3F task (N = 100, M = 1);
* the 1000 -> 500 scenario of the Zenke & Ganguli slides (N = 1000 shared by M = 500);
* ``--targets``: the throughput targets, each as a ratio to the paper loop measured in the same
  run (interleaved): loihi2_ideal at B = 1000 x N = 100 (>= 2e8 synapse-steps/s), B = 1
  (>= 1e8), the learning-engine model ``loihi2`` at B = 1000 (>= 1e8), the float64
  reference's approximate and Euclidean rules (>= 1e8) and natural rule (>= 2e7), all with
  spike generation; plus CPU time / wall time of the serial and parallel runs (parallel
  should use every core, serial one: the check that each variant really has its own thread
  count).  ``--baseline-src DIR`` runs
  the same measurements on an older checkout (e.g. ``git archive <commit> | tar -x -C DIR``)
  in a subprocess, interleaved, for before/after numbers.

    uv run python benchmarks/bench_emulator.py [--config loihi2_ideal] [--targets]
        [--baseline-src DIR] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
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


def timed_run(cfg, b, n, steps, **kw):
    """(synapse-steps/s, CPU time / wall time) of one warm ``emulator.run`` (spikes included)."""
    task = fig3_task(n_trials=b, N=n, M=1, seed=0)
    R.run(cfg, task, 2, 0, **kw)                                  # compile and warm caches
    t0, c0 = time.perf_counter(), time.process_time()
    R.run(cfg, task, steps, 0, chunk_steps=min(steps, 1000), **kw)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return b * n * steps / wall, cpu / wall


def rule_run(rule, b, steps, parallel):
    """(synapse-steps/s, CPU/wall) of the float64 reference ``rule`` (compiled loop, spikes
    drawn inside it: :func:`emulator.reference.run_fused`), warm, N = 100."""
    from emulator.reference import run_fused
    task = fig3_task(n_trials=b, N=100, seed=0)
    args = Rule(rule, task.rates, task.params, task.f, R.default_eta()).kernel_args()
    run_fused(task.w_init.copy(), SpikeSource(task, 0), 2, args, parallel=parallel)  # compile
    W, src = task.w_init.copy(), SpikeSource(task, 0)
    t0, c0 = time.perf_counter(), time.process_time()
    for k in range(0, steps, 4000):
        run_fused(W, src, min(4000, steps - k), args, parallel=parallel)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return b * 100 * steps / wall, cpu / wall


#: (label, config or float rule, B, steps, run keywords) of the throughput targets; N = 100.
TARGETS = (("datapath B=1000 parallel", "loihi2_ideal", 1000, 1000, {"parallel": True}),
           ("datapath B=1000 serial", "loihi2_ideal", 1000, 1000, {"parallel": False}),
           ("datapath B=1", "loihi2_ideal", 1, 40000, {}),
           ("learning engine B=1000 parallel", "loihi2", 1000, 400, {"parallel": True}),
           ("learning engine B=1000 serial", "loihi2", 1000, 400, {"parallel": False}),
           ("float64 approx B=8 parallel", "rule:approx", 8, 40000, {"parallel": True}),
           ("float64 approx B=8 serial", "rule:approx", 8, 40000, {"parallel": False}),
           ("float64 Euclid B=8 parallel", "rule:euclid", 8, 40000, {"parallel": True}),
           ("float64 natural B=8 parallel", "rule:natural", 8, 20000, {"parallel": True}))
GOALS = {"datapath B=1000 parallel": 2e8, "datapath B=1": 1e8,
         "learning engine B=1000 parallel": 1e8, "float64 approx B=8 parallel": 1e8,
         "float64 Euclid B=8 parallel": 1e8, "float64 natural B=8 parallel": 2e7}


def measure_targets() -> dict:
    """{label: (rate, cpu/wall, rate / paper loop of this process)}, paper loop interleaved."""
    out = {}
    for label, cfg, b, steps, kw in TARGETS:
        if "parallel" in kw and "parallel" not in R.run.__code__.co_varnames:
            kw = {}
        base = paper_structure(1000)
        if cfg.startswith("rule:"):
            rate_, ratio = rule_run(cfg[5:], b, steps, kw.get("parallel", False))
        else:
            rate_, ratio = timed_run(cfg, b, 100, steps, **kw)
        out[label] = (rate_, ratio, rate_ / base)
    return out


def targets(repeats: int, baseline_src: str | None) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    runs = {"new": [], "base": []}
    for _ in range(repeats):
        runs["new"].append(measure_targets())
        if baseline_src:                   # the old checkout, in its own interpreter
            env = dict(os.environ, PYTHONPATH=baseline_src)
            code = (f"import sys, json; sys.path.insert(0, {here!r}); import bench_emulator as b;"
                    "print(json.dumps(b.measure_targets()))")
            proc = subprocess.run([sys.executable, "-c", code], env=env, cwd="/",
                                  capture_output=True, text=True, check=True)
            runs["base"].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print("\n| run | synapse-steps/s (median) | target | x paper loop | CPU/wall |"
          + (" before | x paper loop before | speed-up |" if baseline_src else ""))
    print("|---|---|---|---|---|" + ("---|---|---|" if baseline_src else ""))
    for label, *_ in TARGETS:
        r = np.median([m[label][0] for m in runs["new"]])
        x = np.median([m[label][2] for m in runs["new"]])
        cw = np.median([m[label][1] for m in runs["new"]])
        goal = GOALS.get(label)
        line = f"| {label} | {r:.3g} | {goal:.0e} |" if goal else f"| {label} | {r:.3g} | |"
        line += f" {x:.0f} | {cw:.2f} |"
        if baseline_src:
            rb = np.median([m[label][0] for m in runs["base"]])
            xb = np.median([m[label][2] for m in runs["base"]])
            line += f" {rb:.3g} | {xb:.0f} | {r / rb:.2f} |"
        print(line)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="loihi2_ideal")
    ap.add_argument("--targets", action="store_true")
    ap.add_argument("--baseline-src", default=None)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.targets:
        targets(args.repeats, args.baseline_src)
        return
    cfg = args.config
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
