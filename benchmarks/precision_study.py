"""How each config handles sub-LSB weight updates (docs/model.md#weight-precision): a measurement, not a test.

Per step a weight changes by a median 2.5e-6 of its value, far below one LSB of an 8-bit
weight.  For every bundled config, plus ablations of Loihi 2's choice (round to nearest
instead of stochastic rounding; a hidden 8-bit accumulator extension), this runs the
Fig 3F task (N = 100, 10/50 Hz, 4 trials, code learning rate eta_A = 5.5e-4) on identical
spikes and prints: the fraction of weight updates rounded to zero, the final weight RMS
error against float64, and the final output-rate RMSE against the teacher (fixed and float).

    uv run python benchmarks/precision_study.py [--steps 120000] [--seed 0]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from emulator import metrics
from emulator import runner as R
from emulator.hwconfig import load
from emulator.task import fig3_task


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=120_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--trials", type=int, default=4)
    args = ap.parse_args()
    task = fig3_task(n_trials=args.trials, N=100, seed=args.seed)
    x_test = metrics.test_set(task, args.seed)

    def rmse(w):
        return float(metrics.rate_rmse_hz(w, task.w_target, x_test, task.params).mean())

    t0 = time.time()
    fl = R.run("float64", task, args.steps, args.seed)
    print(f"float64: {time.time() - t0:.1f} s; rate RMSE start {rmse(task.w_init):.3f} Hz, "
          f"end {rmse(fl.w_final):.3f} Hz; learned weight change RMS "
          f"{np.sqrt(np.mean((fl.w_final - task.w_init) ** 2)):.3g}")
    loihi2 = load("loihi2")
    variants = [(name, load(name)) for name in ("fxp32", "fxp16", "loihi2", "loihi1")]
    variants += [
        ("loihi2, nearest rounding", loihi2.with_overrides(**{"weights.rounding": "half_up"})),
        ("loihi2, floor rounding", loihi2.with_overrides(**{"weights.rounding": "floor"})),
        ("loihi2, +8 hidden bits, nearest",
         loihi2.with_overrides(**{"weights.extra_frac": 8, "weights.rounding": "half_up"})),
        ("loihi2, +8 hidden bits, stochastic", loihi2.with_overrides(**{"weights.extra_frac": 8})),
    ]
    print(f"\n| config | weight LSB | dw rounding | updates rounded to 0 | w RMS err vs float "
          f"| rate RMSE fixed [Hz] | float [Hz] |")
    print("|---|---|---|---|---|---|---|")
    n_updates = args.steps * task.w_init.size
    for name, cfg in variants:
        fx = R.run(cfg, task, args.steps, args.seed)
        w = cfg["weights"]
        under = fx.counters["weights"]["underflow"] / n_updates
        err = np.sqrt(np.mean((fx.w_final - fl.w_final) ** 2))
        print(f"| {name} | 2^-{w['frac']} (+{w['extra_frac']} hidden) | {w['rounding']} "
              f"| {under:.1%} | {err:.3g} | {rmse(fx.w_final):.3f} | {rmse(fl.w_final):.3f} |")


if __name__ == "__main__":
    main()
