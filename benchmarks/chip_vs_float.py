"""Late-window output-rate RMSE of a chip config against float64 on identical spikes (not a
test): the acceptance measurement of the learning-engine mapping.

    uv run python benchmarks/chip_vs_float.py [--config loihi2] [--trials 4] [--seconds 2000]
        [--late 1000] [--seeds 0,1] [--set KEY=VALUE ...] [--float-cache DIR]

Fig 3 task, N = 100 (10/50 Hz), the paper's code learning rate eta_A = 5.5e-4; the float64
approximate rule and the config run on the same spikes (``natgrad.comparison.compare``);
weights recorded every 10 s; the RMSE (Hz) on the 50-sample test set, mean over trials and over the records in the late
window [late, seconds].  Prints, per seed, the ratio chip / float with the per-trial ratios
and the chip's counters (carries, saturations), then the mean over seeds.  The float64 run
does not depend on the chip config, so it is cached (``--float-cache``, default a folder in
the system's temp directory; ``--float-cache ''`` turns the cache off).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from types import SimpleNamespace

import numpy as np

import emulator
from emulator.runner import default_eta
from emulator.task import fig3_task
from natgrad import comparison
from natgrad.backends import backend_for


def float_run(task, steps, every, seed, cache):
    """The float64 approximate rule's recorded weights (the comparison's float side), from
    ``cache`` when it holds them; and the seconds it took (0 from the cache)."""
    path = (os.path.join(cache, f"float_w_{seed}_{task.n_trials}_{steps}_{every}.npz")
            if cache else None)
    if path and os.path.exists(path):
        z = np.load(path)
        return SimpleNamespace(record={"weights": z["w"]}, record_t_s=z["t"],
                               w_final=z["w_final"]), 0.0
    t0 = time.perf_counter()
    res = emulator.run("float64", task, steps, seed, record=("weights",), record_every=every,
                       chunk_steps=20000)
    if path:
        os.makedirs(cache, exist_ok=True)
        np.savez(path, w=res.record["weights"], t=res.record_t_s, w_final=res.w_final)
    return res, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="loihi2")
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=2000.0)
    ap.add_argument("--late", type=float, default=1000.0)
    ap.add_argument("--seeds", default="0,1", help="comma-separated task/run seeds")
    ap.add_argument("--seed", type=int, default=None, help="one seed (same as --seeds S)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override, e.g. mapping.hidden_bits=3 (repeatable)")
    ap.add_argument("--float-cache", default=os.path.join(tempfile.gettempdir(),
                                                          "natgrad_chip_vs_float"))
    a = ap.parse_args()
    from emulator.hwconfig import load
    import yaml
    cfg = load(a.config)
    if a.set:
        cfg = cfg.with_overrides(**{k: yaml.safe_load(v) for k, v in
                                    (kv.split("=", 1) for kv in a.set)})
    name = cfg.name + "".join(f" {x}" for x in a.set)
    seeds = [a.seed] if a.seed is not None else [int(s) for s in a.seeds.split(",")]
    ratios, trial_ratios = [], []
    for seed in seeds:
        task = fig3_task(n_trials=a.trials, N=100, seed=seed)
        steps = int(round(a.seconds / task.params.dt))
        every = int(round(10.0 / task.params.dt))
        fl_run, dt_fl = float_run(task, steps, every, seed, a.float_cache)
        t0 = time.perf_counter()
        cmp = comparison.compare(backend_for(cfg), task, steps, seed, default_eta(),
                                 record_every=every, chunk_steps=20000, float_run=fl_run,
                                 window_s=(a.late, None))
        dt_ch = time.perf_counter() - t0
        fl = comparison.window_mean(cmp.float_trials, cmp.t_s, cmp.window_s)
        ch = comparison.window_mean(cmp.chip_trials, cmp.t_s, cmp.window_s)
        fl_final, ch_final = float(cmp.float_trials[-1].mean()), float(cmp.chip_trials[-1].mean())
        res = cmp.chip_run
        ratio = ch / fl
        ratios.append(ch.mean() / fl.mean())
        trial_ratios.extend(ratio.tolist())
        print(f"seed {seed}: float64 late RMSE {fl.mean():.3f} Hz (trials {np.round(fl, 3)}), "
              f"final {fl_final:.3f} Hz, {dt_fl:.0f} s")
        print(f"seed {seed}: {name}: late RMSE {ch.mean():.3f} Hz (trials {np.round(ch, 3)}), "
              f"final {ch_final:.3f} Hz, {dt_ch:.0f} s")
        st = getattr(res, "state", None)
        if st is not None and hasattr(st, "synapse_counters"):
            nz = {k: v for k, v in {**st.counters, **st.synapse_counters}.items() if v}
            print(f"seed {seed}: counters {nz}; levels/events sent (+, -) "
                  f"{st.events.sum(axis=(0, 1)).tolist()}")
        print(f"seed {seed}: ratio chip / float64 {ratios[-1]:.4f} "
              f"(per trial {np.round(ratio, 3)})", flush=True)
    tr = np.array(trial_ratios)
    print(f"mean ratio over seeds {np.mean(ratios):.4f} (seeds {np.round(ratios, 4)}); "
          f"per-trial ratio max {tr.max():.3f}, trials above 1.6: {int(np.sum(tr > 1.6))} "
          f"of {tr.size}")


if __name__ == "__main__":
    main()
