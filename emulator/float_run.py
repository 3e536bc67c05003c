"""float64 runs of the approximate rule behind :func:`emulator.run.run` (``kind: float64``).

The update itself is the float reference's (:mod:`emulator.reference`, rule ``'approx'``,
gamma_s exact every step); this module only drives it over time chunks on the shared
spikes and records the same variables as the integer emulator, in physical units.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit

from emulator.hwconfig import HwConfig
from emulator.reference import _moments, _Rule
from emulator.result import RunResult
from emulator.spikes import SpikeSource
from emulator.task import Task


def float_variables(rule: _Rule, W: np.ndarray, x: np.ndarray, y: np.ndarray) -> dict:
    """Per-step datapath variables of the float approximate rule at weights W, USP x.

    Returns potential V (K, M), sigma, error e = y - phi_max dt sigma, gamma_s and the post
    factor P = eta gamma_s (1 - sigma) e -- the quantities the integer datapath stores.
    """
    p = rule.params
    ws = W if rule.ident else rule.f.f(W)
    V = np.matmul(ws, x[:, :, None])[..., 0]
    s = expit(p.beta * (V - p.theta))
    e = y - rule.phidt * s
    m = ws @ rule.r
    v = ((ws * ws) @ rule.r) / rule.ceps
    gs = 1.0 / _moments(m, v, p, need=1)[0]
    return {"potential": V, "sigma": s, "error": e, "gamma_s": gs,
            "post": rule.eta * gs * (1.0 - s) * e}


def run_float(cfg: HwConfig, task: Task, steps: int, seed: int, *, eta: float, record=(),
              record_every: int = 0, chunk_steps: int = 4000, trials=None, progress=None):
    """Float64 counterpart of the integer run; same arguments and result type."""
    trials = np.arange(task.n_trials) if trials is None else np.asarray(trials, np.int64)
    rule = _Rule("approx", task.rates, task.params, task.f, eta)
    src = SpikeSource(task, seed, trials)
    W = np.array(task.w_init[trials], dtype=np.float64)
    B, M, N = W.shape
    rec = {name: [] for name in record}
    t_rec = []
    teach_spk = np.zeros((B, M), np.int64)
    done = 0
    # chunks end on recording steps, so the source's traces are those of the recorded step
    chunk = record_every * max(1, chunk_steps // record_every) if record_every else chunk_steps
    if {"trace_m", "trace_s"} & set(record):
        chunk = record_every
    while done < steps:
        n = min(chunk, steps - done)
        X, Y, x = src.next(n, return_usp=True)
        teach_spk += Y.sum(axis=0, dtype=np.int64)
        y = Y.astype(np.float64)
        for t in range(n):
            k = done + t
            recording = record and (k + 1) % record_every == 0
            if recording:      # values of step k, computed from the weights before its update
                vars_ = float_variables(rule, W, x[t], y[t])
            W += rule(W, x[t], y[t])
            if recording:
                vars_.update(usp=x[t], weights=W.copy())
                if t == n - 1:  # chunks end on recording steps (see above)
                    vars_.update(trace_m=src.a_m, trace_s=src.a_s)
                for name in record:
                    rec[name].append(np.array(vars_[name]))
                t_rec.append((k + 1) * task.params.dt)
        done += n
        if progress is not None:
            progress(done)
    recorded = {name: np.array(v) for name, v in rec.items()}
    return RunResult(config_name=cfg.name, steps=steps, seed=seed, trials=trials,
                     w_final=W, w_int=None, counters={}, record=recorded,
                     record_t_s=np.array(t_rec), output_spikes=None, teacher_spikes=teach_spk)
