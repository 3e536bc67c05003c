"""Path 2 (Lava learning engine): milliseconds per step, and the learning curve vs float64.

    uv run python benchmarks/bench_lava_path2.py [--sizes 100 1000] [--steps 2000]
    uv run python benchmarks/bench_lava_path2.py --learning [--seconds 100] [--trials 8]

Timing rows (one trial, M = 1, Fig 3 task with w_scale = 1/N, eta = ETA_CODE_SCALED, the
design of ``--config``, default the shipped ``loihi2``):

* ``lava path2``   -- LearningDense (fixed_pt, Loihi3FLearningRule, t_epoch = 1) +
  NatGradLENeuron + two RingBuffer sources; the blocking ``run`` only (compile and worker
  start-up reported as ``setup_s``)
* ``emulator le``  -- ``emulator.learning.run`` (numba kernel) on the same task,
  after a warm-up call

``--learning``: rate RMSE (Hz, mean over trials, 50-sample test set) every tenth of the
run for the learning-engine mode (two seeds), the float64 rule (``emulator.run``) and a
float64 ablation that changes only one thing, the post factor sent as events of size E_q
(isolates the cost of the event coding).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from emulator import learning as LE  # noqa: E402
from emulator import runner as R  # noqa: E402
from emulator.metrics import rate_rmse_hz, test_set  # noqa: E402
from emulator.reference import ETA_CODE_SCALED  # noqa: E402
from emulator.task import fig3_task  # noqa: E402

SEED = 1
ETA = ETA_CODE_SCALED["approx"]


CONFIG = "loihi2"


def _design(task):
    """The bundled config's design of ``task`` (``--config``, default the shipped loihi2)."""
    from emulator.hwconfig import load
    return LE.design_for_config(load(CONFIG), task, ETA)


def bench_lava(n, steps):
    from lava_procs.learning_engine import run_lava_le
    task = fig3_task(n_trials=1, N=n, seed=0)
    d = _design(task)
    res = run_lava_le(d, task, steps, SEED)
    t = res["timing"]
    return {"ms_per_step": 1e3 * t["run"] / steps, "steps": steps, "setup_s": t["setup"],
            "read_s": t["read"], "rule": res["rule"]}


def bench_emulator(n, steps):
    task = fig3_task(n_trials=1, N=n, seed=0)
    d = _design(task)
    LE.run(task, 10, SEED, d)
    t0 = time.perf_counter()
    LE.run(task, steps, SEED, d)
    return {"ms_per_step": 1e3 * (time.perf_counter() - t0) / steps, "steps": steps}


def float_events(task, d, steps, seed, rec):
    """float64 approximate rule (exact gamma_s every step) whose post factor is sent as
    events of size E_q with probability |P| / E_q (capped at 1): the event coding alone."""
    from scipy.special import expit

    from emulator.rule_math import membrane_stats, moments
    from emulator.spikes import SpikeSource
    from fixedpoint import rng
    p = task.params
    src = SpikeSource(task, seed)
    w = task.w_init.copy()
    r, c = task.rates, p.c_eps
    idx = rng.trial_unit_index(np.arange(task.n_trials), np.arange(task.M))
    out, done = [], 0
    while done < steps:
        n = min(4000, steps - done)
        _, y, x = src.next(n, return_usp=True)
        for t in range(n):
            k = done + t
            v = (w @ x[t][:, :, None])[..., 0]
            s = expit(p.beta * (v - p.theta))
            e = y[t] - p.phi_max * p.dt * s
            g = 1.0 / moments(*membrane_stats(w, r, c), p, need=1)[0]
            post = d.eta * g * (1 - s) * e
            u = rng.uniform(seed, 40, k, idx)
            post = np.sign(post) * d.e_q * (u < np.minimum(np.abs(post) / d.e_q, 1.0))
            w += post[:, :, None] * (c * x[t][:, None, :] / r - c * p.c_u
                                     + p.c_w * v[:, :, None] * w)
            if (k + 1) % rec == 0:
                out.append(w.copy())
        done += n
    return out


def learning(seconds, trials, n):
    task = fig3_task(n_trials=trials, N=n, seed=0)
    xt = test_set(task, seed=123)
    rmse = lambda w: round(float(rate_rmse_hz(w, task.w_target, xt, task.params).mean()), 3)  # noqa
    steps = int(round(seconds / task.params.dt))
    rec = steps // 10
    d = LE.design_for_task(task, ETA)
    out = {"t_s": [(i + 1) * rec * task.params.dt for i in range(10)], "rmse0": rmse(task.w_init),
           "rmse0_quantized": rmse(LE.quantize_weights(d, task.w_init) * d.lsb_w),
           "rule": d.rule, "w_frac": d.w_frac, "c_ev": d.c_ev}
    for seed in (1, 2):
        t0 = time.perf_counter()
        le = LE.run(task, steps, seed, d, record_every=rec)
        out[f"le_seed{seed}"] = [rmse(w) for w in le.record_w]
        out[f"le_seed{seed}_counters"] = le.counters
        out[f"le_seed{seed}_events"] = le.events.sum(axis=(0, 1)).tolist()
        out[f"le_seed{seed}_s"] = time.perf_counter() - t0
        fl = R.run("float64", task, steps, seed, eta=ETA, record=("weights",), record_every=rec)
        out[f"float_seed{seed}"] = [rmse(w) for w in fl.record["weights"]]
        print(json.dumps({k: v for k, v in out.items() if str(seed) in k}), flush=True)
    out["float_events_seed1"] = [rmse(w) for w in float_events(task, d, steps, 1, rec)]
    print(json.dumps({"float_events_seed1": out["float_events_seed1"]}), flush=True)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--learning", action="store_true")
    ap.add_argument("--seconds", type=float, default=100.0)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--config", default="loihi2", help="bundled learning-engine config "
                    "whose design is timed (default: the shipped loihi2)")
    a = ap.parse_args(argv)
    global CONFIG
    CONFIG = a.config
    if a.learning:
        res = learning(a.seconds, a.trials, a.n)
    else:
        res = {}
        for n in a.sizes:
            res[f"lava path2 N={n}"] = bench_lava(n, a.steps)
            res[f"emulator le N={n}"] = bench_emulator(n, 20 * a.steps)
            for k in (f"lava path2 N={n}", f"emulator le N={n}"):
                print(f"{k:24s} {res[k]['ms_per_step']:8.3f} ms/step", flush=True)
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
