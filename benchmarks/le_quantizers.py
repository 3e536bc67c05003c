"""Which quantizer of the learning engine holds it back (a measurement, not a test).

    PYTHONPATH=. python benchmarks/le_quantizers.py [--seconds 400] [--late 200]
        [--seed 0] [--variants default,h2,...]

Fig 3 task (N = 100, 4 trials, seed 0), eta = ETA_CODE['approx'] (5.5e-4); the float64
approximate rule and each learning-engine variant run on the same spikes; weights recorded
every 10 s; output-rate RMSE (Hz) on the test set, mean over trials, neurons and the records
in the late window [late, seconds].  The float64 run is cached in /tmp (it does not depend
on the variant).  Prints RMSE and the ratio to float per variant.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import emulator
from emulator import learning as LE
from emulator import metrics
from emulator.reference import ETA_CODE
from emulator.task import fig3_task

VARIANTS = {
    "default": {},
    # hidden bits, carry every epoch (Lava-exact; flush_log2 None)
    **{f"h{h}": {"mapping": {"hidden_bits": h}} for h in range(1, 7)},
    # hidden bits, whole tag flushed every 2**k epochs (Lava-exact; k <= 9)
    "h4_flush6": {"mapping": {"hidden_bits": 4, "flush_log2": 6}},
    "h2_flush9": {"mapping": {"hidden_bits": 2, "flush_log2": 9}},
    # emulator-only idealizations
    "w_per_synapse": {"engine": {"weight_rounding": "per_synapse"}},
    "t_per_synapse": {"engine": {"trace_rounding": "per_synapse"}},
    "wt_per_synapse": {"engine": {"weight_rounding": "per_synapse",
                                  "trace_rounding": "per_synapse"}},
    "h3_t_per_synapse": {"mapping": {"hidden_bits": 3},
                         "engine": {"trace_rounding": "per_synapse"}},
    "h5_t_per_synapse": {"mapping": {"hidden_bits": 5},
                         "engine": {"trace_rounding": "per_synapse"}},
    # epochs, neuron
    "t_epoch2": {"engine": {"t_epoch": 2}},
    "t_epoch4": {"engine": {"t_epoch": 4}},
    "h5_t_epoch2": {"mapping": {"hidden_bits": 5}, "engine": {"t_epoch": 2}},
    # smaller events (c_ev 64 instead of 128: E_q >= eta * 2), more of them
    "h3_gcap2": {"mapping": {"hidden_bits": 3}, "neuron": {"g_cap": 2.0}},
    # events below the bare engine's smallest (c_ev 64): only with hidden bits
    "h3_cev32": {"mapping": {"hidden_bits": 3, "c_ev": 32}},
    "h3_cev16": {"mapping": {"hidden_bits": 3, "c_ev": 16}},
    "no_sigma_interp": {"neuron": {"sigma_interpolate": False}},
}


def rmse_curve(w_rec, task, x_test):
    """(R,) RMSE [Hz] of each record, mean over trials and neurons."""
    return np.array([metrics.rate_rmse_hz(w, task.w_target, x_test, task.params, task.f).mean()
                     for w in w_rec])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=400.0)
    ap.add_argument("--late", type=float, default=200.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    a = ap.parse_args()
    task = fig3_task(n_trials=4, N=100, seed=a.seed)
    eta = ETA_CODE["approx"]
    steps = int(round(a.seconds / task.params.dt))
    every = int(round(10.0 / task.params.dt))
    x_test = metrics.test_set(task, a.seed)
    cache = f"/tmp/le_quant_float_{a.seed}_{steps}_{every}.npz"
    if os.path.exists(cache):
        z = np.load(cache)
        w_fl, t_fl = z["w"], z["t"]
    else:
        t0 = time.perf_counter()
        res = emulator.run("float64", task, steps, a.seed, eta=eta, record=("weights",),
                           record_every=every)
        w_fl, t_fl = res.record["weights"], res.record_t_s
        np.savez(cache, w=w_fl, t=t_fl)
        print(f"float64 run {time.perf_counter() - t0:.0f} s")
    keep = t_fl >= a.late
    r_fl = rmse_curve(w_fl[keep], task, x_test).mean()
    print(f"float64: late RMSE {r_fl:.4f} Hz  (window {a.late:g}-{a.seconds:g} s)")
    for name in filter(None, a.variants.split(",")):
        v = VARIANTS[name]
        d = LE.design_for_task(task, eta, mapping=LE.MappingSpec(**v.get("mapping", {})),
                               engine=LE.EngineSpec(**v.get("engine", {})),
                               neuron=LE.NeuronSpec(**v.get("neuron", {})))
        t0 = time.perf_counter()
        r = LE.run(task, steps, a.seed, d, record_every=every, chunk_steps=20000)
        keep = r.record_t_s >= a.late
        r_le = rmse_curve(r.record_w[keep], task, x_test).mean()
        print(f"{name:>18s}: late RMSE {r_le:.4f} Hz, ratio {r_le / r_fl:.3f}, "
              f"counters {r.counters} {r.synapse_counters}, {time.perf_counter() - t0:.0f} s",
              flush=True)


if __name__ == "__main__":
    main()
