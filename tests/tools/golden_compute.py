"""Golden hashes of the integer results: the bit contract.

``python tests/tools/golden_compute.py`` prints the hashes of the current code; the test
(``tests/emulator/test_golden.py``) compares them with ``hashes.json``.  They must not move unless
a change means to move them (and its commit message says so).  Each case hashes the final visible integer weights, the student's and
the teacher's spike counts, every counter, and a recorded integer trace of V and the
weights (so a change in any stage, not only in the end state, moves the hash).
"""
from __future__ import annotations

import hashlib
import json
import sys

import numpy as np

#: (case name, config, N, M, trials, steps, seed, group_rates).  Every bundled fixed config
#: on the Fig 3 task, plus two unusual shapes (odd N, several output neurons, one trial).
CASES = (
    ("loihi2_ideal", "loihi2_ideal", 100, 1, 3, 3000, 11, (10.0, 50.0)),
    ("loihi1", "loihi1", 100, 1, 3, 3000, 11, (10.0, 50.0)),
    ("fxp16", "fxp16", 100, 1, 3, 3000, 11, (10.0, 50.0)),
    ("fxp32", "fxp32", 100, 1, 3, 3000, 11, (10.0, 50.0)),
    ("loihi2_ideal_odd_N7_M3", "loihi2_ideal", 7, 3, 2, 2500, 5, (20.0, 40.0)),
    ("fxp16_N33_M2_B1", "fxp16", 33, 2, 1, 2500, 3, (5.0, 30.0)),
)

#: Learning-engine mode (Lava path 2's emulator) on the Fig 3 task: (case name, N, M,
#: trials, steps, seed, config or None for the default spec records, config overrides).
#: Re-recorded for the graded third factors, the carry and tag_2's 8-bit range: the two
#: default-record cases keep their weights, traces and events bit for bit, only their
#: counters' names changed; the config cases are new.  Re-recorded again, all six, when
#: the learning neuron moved to 24-bit words (U0.25 running mean, amounts in
#: units 2**-14, |e| eta / E before gamma_s (1 - sigma)), gamma_s without a division
#: (within 2**-21 of the quotient, no longer equal to it), and two new counters.
LE_CASES = (
    ("learning_engine_fig3", 100, 1, 2, 2000, 7, None, {}),
    ("learning_engine_N9_M2", 9, 2, 2, 1500, 4, None, {}),
    ("loihi2_graded_fig3", 100, 1, 2, 3000, 7, "loihi2", {}),
    ("loihi2_graded_N9_M2", 9, 2, 2, 2500, 4, "loihi2", {}),
    ("loihi2_events_fig3", 100, 1, 2, 3000, 7, "loihi2_events", {}),
    ("loihi2_euclid_N20_M2", 20, 2, 2, 2500, 3, "loihi2", {"mapping.rule": "euclid"}),
)


def _digest(*arrays, extra=None) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a, np.int64))
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    if extra is not None:
        h.update(json.dumps(extra, sort_keys=True).encode())
    return h.hexdigest()[:32]


def datapath_hash(config, N, M, trials, steps, seed, rates, backend="numba", chunk_steps=4000):
    from emulator.runner import run
    from emulator.task import fig3_task
    task = fig3_task(n_trials=trials, N=N, M=M, group_rates=rates, seed=seed)
    r = run(config, task, steps, seed, record=("weights", "potential"), record_every=97,
            backend=backend, chunk_steps=chunk_steps)
    lsb_w = float(r.w_final.flat[np.flatnonzero(r.w_int)[0]] / r.w_int.flat[np.flatnonzero(r.w_int)[0]])
    rec_w = np.rint(r.record["weights"] / lsb_w)
    rec_v = r.record["potential"]
    lsb_v = np.min(np.abs(rec_v[rec_v != 0])) if np.any(rec_v != 0) else 1.0
    # V's LSB is a power of two; record it in units of the smallest power of two that divides all
    v_frac = 0
    while not np.all(np.rint(rec_v * 2.0**v_frac) == rec_v * 2.0**v_frac):
        v_frac += 1
    return _digest(r.w_int, r.output_spikes, r.teacher_spikes, rec_w, np.rint(rec_v * 2.0**v_frac),
                   extra={"counters": r.counters, "v_frac": v_frac})


def learning_engine_hash(N, M, trials, steps, seed, config=None, overrides=None,
                         backend="numba"):
    from emulator import learning as le
    from emulator.task import fig3_task
    task = fig3_task(n_trials=trials, N=N, M=M, seed=seed)
    d = None
    if config is not None:
        from emulator.hwconfig import load
        from emulator.reference import ETA_CODE
        cfg = load(config).with_overrides(**(overrides or {}))
        d = le.design_for_config(cfg, task, ETA_CODE[cfg["mapping"]["rule"]] * 20)
    r = le.run(task, steps, seed, d, record_every=101, backend=backend)
    n = r.neuron
    extra = {"counters": {k: int(v) for k, v in r.counters.items()}}
    arrays = [r.w_int, r.x_traces, r.events, r.teacher_spikes, n.v, n.gamma, n.p,
              np.rint(r.record_w / (r.w_final.flat[np.flatnonzero(r.w_int)[0]]
                                    / r.w_int.flat[np.flatnonzero(r.w_int)[0]]))]
    if config is not None:           # the new cases also pin tag_2, the carry, the engine
        arrays += [r.d_tag, n.carry]
        extra["synapse_counters"] = {k: int(v) for k, v in r.synapse_counters.items()}
        extra["rule"] = d.rule + " | " + d.rule_dd
    return _digest(*arrays, extra=extra)


def compute_all() -> dict:
    out = {}
    for name, cfg, N, M, B, steps, seed, rates in CASES:
        out[name] = datapath_hash(cfg, N, M, B, steps, seed, rates)
    for name, N, M, B, steps, seed, cfg, ov in LE_CASES:
        out[name] = learning_engine_hash(N, M, B, steps, seed, cfg, ov)
    return out


if __name__ == "__main__":
    json.dump(compute_all(), sys.stdout, indent=1, sort_keys=True)
    print()
