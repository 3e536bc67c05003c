"""Late-window output-rate RMSE of a chip config against float64 on identical spikes (not a
test): the issue-11 acceptance measurement.

    uv run python benchmarks/chip_vs_float.py [--config loihi2] [--trials 4] [--seconds 2000]
        [--late 1000] [--seed 0]

Fig 3 task, N = 100 (10/50 Hz), the paper's code learning rate eta_A = 5.5e-4; the float64
approximate rule and the config run on the same spikes; weights recorded every 10 s; the
RMSE (Hz) on the 50-sample test set, mean over trials and over the records in the late
window [late, seconds].  Prints the ratio chip / float with the per-trial spread.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import emulator
from emulator import metrics
from emulator.task import fig3_task


def late_rmse(res, task, seed, late_s):
    x_test = metrics.test_set(task, seed)
    t = res.record_t_s
    keep = t >= late_s
    w = res.record["weights"][keep]                          # (R, B, M, N)
    r = np.array([metrics.rate_rmse_hz(wk, task.w_target, x_test, task.params, task.f)
                  for wk in w])                              # (R, B, M)
    return r.mean(axis=(0, 2)), float(r[-1].mean())          # per trial, final


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="loihi2")
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=2000.0)
    ap.add_argument("--late", type=float, default=1000.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override, e.g. mapping.hidden_bits=3 (repeatable)")
    a = ap.parse_args()
    from emulator.hwconfig import load
    import yaml
    cfg = load(a.config)
    if a.set:
        cfg = cfg.with_overrides(**{k: yaml.safe_load(v) for k, v in
                                    (kv.split("=", 1) for kv in a.set)})
    task = fig3_task(n_trials=a.trials, N=100, seed=a.seed)
    steps = int(round(a.seconds / task.params.dt))
    every = int(round(10.0 / task.params.dt))
    out = {}
    for cfg_ in ("float64", cfg):
        t0 = time.perf_counter()
        res = emulator.run(cfg_, task, steps, a.seed, record=("weights",), record_every=every,
                           chunk_steps=20000)
        per_trial, final = late_rmse(res, task, a.seed, a.late)
        name = cfg_ if isinstance(cfg_, str) else cfg_.name + "".join(f" {x}" for x in a.set)
        out["float64" if cfg_ == "float64" else "chip"] = per_trial
        print(f"{name:>14s}: late RMSE {per_trial.mean():.3f} Hz (trials {np.round(per_trial, 3)}), "
              f"final {final:.3f} Hz, {time.perf_counter() - t0:.0f} s")
    ratio = out["chip"] / out["float64"]
    print(f"ratio chip / float64: {out['chip'].mean() / out['float64'].mean():.3f} "
          f"(per trial {np.round(ratio, 3)}, sd {ratio.std(ddof=1) if ratio.size > 1 else 0:.3f})")


if __name__ == "__main__":
    main()
