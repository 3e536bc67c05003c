"""Shared machinery of the paper experiments: presets, the multi-rule float driver on shared
spikes, hardware-config runs of the approximate rule, and output writing (PNG + JSON).

Every random bit comes from the counter RNG of :mod:`fixedpoint.rng` (through
:class:`emulator.spikes.SpikeSource` and :func:`emulator.metrics.test_set`), so a float run and
a hardware-config run with the same task and seed see identical input and teacher spikes.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emulator.metrics import kl_cost, rate_rmse_hz, test_set, weight_distance
from emulator.drive import drive, stops_at
from emulator.float_kernel import run_fused
from emulator.reference import Rule
from emulator.threads import default_parallel
from emulator.spikes import SpikeSource
from emulator.task import Task
from natgrad.backends import backend_for

SCALES = ("small", "paper")


# ---------------------------------------------------------------------------- presets
def preset(presets: dict, scale: str, overrides: dict) -> dict:
    """Merge ``overrides`` into the ``scale`` preset; unknown keys are an error."""
    if scale not in presets:
        raise ValueError(f"scale must be one of {tuple(presets)} (got {scale!r})")
    p = dict(presets[scale])
    bad = set(overrides) - set(p)
    if bad:
        raise ValueError(f"unknown experiment parameter {sorted(bad)[0]!r} (allowed: {', '.join(sorted(p))})")
    p.update(overrides)
    return p


def scaled_etas(p: dict, defaults: dict) -> dict:
    """The experiment's learning rates in code units, rule -> rate, under ``natgrad experiment
    --eta``: the preset entry ``eta`` (None: ``defaults`` as they are) is the approximate
    rule's rate; a rule whose default equals the approximate rule's keeps sharing it, every
    other rule's default is scaled by the same factor (as ``natgrad run --eta`` scales its
    Euclidean context run).  ``defaults`` must hold ``'approx'``."""
    eta = p.get("eta")
    if eta is None:
        return dict(defaults)
    base = defaults["approx"]
    return {r: float(eta) if v == base else v * (float(eta) / base) for r, v in defaults.items()}


def steps_of(seconds: float, dt: float = 0.0005) -> int:
    return int(round(seconds / dt))


#: Receive the current activity, and the start of a non-simulation stage, as text
#: (``natgrad experiment`` shows them as progress); None: batch notes go to stderr.
STATUS = None
STAGE = None


def set_status(status=None, stage=None) -> None:
    """Route progress text to ``status(text)`` and stage names to ``stage(text)``."""
    global STATUS, STAGE
    STATUS, STAGE = status, stage


def _status(msg: str) -> None:
    if STATUS is not None:
        STATUS(msg)


def _note(msg: str) -> None:
    """Progress of a multi-batch run (``--scale paper``): to the status callback if set,
    else a line on stderr."""
    if STATUS is not None:
        STATUS(msg)
        return
    import sys
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


# ---------------------------------------------------------------------------- float driver
@dataclass
class Curves:
    """Per-trial metrics of one rule: arrays (E, K) over evaluation times t_s (E,)."""

    t_s: np.ndarray
    rmse: np.ndarray
    kl: np.ndarray
    wdist: np.ndarray
    W: np.ndarray                  #: (K, M, N) final weights
    W_record: np.ndarray | None    #: (R, K, M, N) at t_record_s, or None
    t_record_s: np.ndarray | None


def _nb_args(task: Task, rule: str, eta: float):
    args = Rule(rule, task.rates, task.params, task.f, eta).kernel_args()
    if args is None:
        raise ValueError("parametrization not supported by the compiled loop")
    return args


def float_rules(task: Task, etas: dict, steps: int, seed: int, eval_every: int | None = None,
                record_every: int | None = None, batch: int = 64, n_test: int = 50,
                chunk: int = 2000, progress=None, trials=None) -> dict:
    """Run several float64 rules (``etas``: rule -> code-unit learning rate) on *identical*
    spikes, trials in batches of ``batch``.  Same arithmetic and spikes as
    :func:`emulator.reference.simulate` (one compiled Euler loop per rule, the spikes drawn
    inside it, trials of a batch on threads in the main process).  Returns rule -> :class:`Curves` (metrics only with ``w_target``).
    ``trials`` (global ids) restricts the run to those trials (a shard); every trial's
    numbers are the same whatever the batch or shard it runs in.
    """
    all_trials = np.arange(task.n_trials) if trials is None else np.asarray(trials, np.int64)
    K = all_trials.size
    ev = np.arange(0, steps + 1, eval_every) if eval_every else np.array([0, steps])
    rec = np.arange(0, steps + 1, record_every) if record_every else np.zeros(0, np.int64)
    ev_set, rec_set = set(ev.tolist()), set(rec.tolist())
    bounds = sorted(ev_set | rec_set | {steps})
    args = {r: _nb_args(task, r, eta) for r, eta in etas.items()}
    out = {r: {"rmse": [], "kl": [], "wd": [], "W": [], "rec": []} for r in etas}
    has_target = task.w_target is not None
    nb = -(-K // batch)
    for b0 in range(0, K, batch):
        tr = all_trials[b0:b0 + batch]
        if nb > 1:
            _note(f"float64 {'/'.join(etas)}: trials {tr[0]}..{tr[-1]} of {K}")
        # one spike source per rule: the fused loop draws the same spikes for each
        srcs = {r: SpikeSource(task, seed, tr) for r in etas}
        par = default_parallel(tr.size)
        Xt = test_set(task, seed, n_test, tr) if has_target else None
        Wt = task.w_target[tr] if has_target else None
        W = {r: task.w_init[tr].copy() for r in etas}
        m = {r: {"rmse": [], "kl": [], "wd": [], "rec": []} for r in etas}

        def events(t):
            for r in etas:
                if t in ev_set and has_target:
                    m[r]["rmse"].append(rate_rmse_hz(W[r], Wt, Xt, task.params, task.f)[:, 0])
                    m[r]["kl"].append(kl_cost(W[r], Wt, Xt, task.params, task.f)[:, 0])
                    m[r]["wd"].append(weight_distance(W[r], Wt)[:, 0])
                if t in rec_set:
                    m[r]["rec"].append(W[r].copy())

        events(0)
        engine = _RulesEngine(W, srcs, args, par, events, bounds, etas, tr, K, steps, progress,
                              b0)
        engine.report(0)
        drive(engine, None, steps, chunk, next_stop=stops_at(bounds))
        for r in etas:
            o = out[r]
            if has_target:
                o["rmse"].append(np.array(m[r]["rmse"]))
                o["kl"].append(np.array(m[r]["kl"]))
                o["wd"].append(np.array(m[r]["wd"]))
            o["W"].append(W[r])
            if len(rec):
                o["rec"].append(np.array(m[r]["rec"]))
    dt = task.params.dt
    res = {}
    for r in etas:
        o = out[r]
        cat = (lambda key: np.concatenate(o[key], axis=1)) if has_target else (lambda key: None)
        res[r] = Curves(t_s=ev * dt, rmse=cat("rmse"), kl=cat("kl"), wdist=cat("wd"),
                        W=np.concatenate(o["W"], axis=0),
                        W_record=np.concatenate(o["rec"], axis=1) if len(rec) else None,
                        t_record_s=rec * dt if len(rec) else None)
    return res


class _RulesEngine:
    """:func:`float_rules`' steps for :func:`emulator.drive.drive`: every rule's compiled loop
    over the same chunk (each with its own spike source, drawing the same spikes), then a
    divergence check; at the event steps the metrics, the status line and ``progress``."""

    def __init__(self, W, srcs, args, parallel, events, bounds, etas, tr, K, steps, progress,
                 b0):
        self.W, self.srcs, self.args, self.parallel = W, srcs, args, parallel
        self.events, self.bounds, self.progress = events, set(bounds), progress
        self.what = f"float64 {'/'.join(etas)}: trials {tr[0]}..{tr[-1]} of {K}"
        self.steps, self.b0 = steps, b0

    def fused(self, n, done, rows):
        for r, W in self.W.items():
            run_fused(W, self.srcs[r], n, self.args[r], parallel=self.parallel)
            if not np.all(np.isfinite(W)):
                raise FloatingPointError(f"{r}: weights became non-finite (eta too large?)")

    def chunk_end(self, done):
        if done in self.bounds:
            self.events(done)
            self.report(done)

    def report(self, done):
        """Status line and ``progress(first trial of the batch, step)`` at an event step."""
        _status(f"{self.what}, step {done} of {self.steps}")
        if self.progress is not None:
            self.progress(self.b0, done)


# ---------------------------------------------------------------------------- hardware configs
def config_label(cfg) -> str | None:
    """Name of a chip config, None for no config or the float64 reference."""
    return None if cfg is None else backend_for(cfg).label()


def chip_rule(cfg) -> str:
    """The rule a chip config runs (the learning engine's ``mapping.rule``; the integer
    datapath implements the approximate rule only)."""
    return backend_for(cfg).rule()


def chip_run(cfg, task: Task, steps: int, seed: int, eta: float, record_every: int | None = None,
             batch: int = 50, trials=None):
    """The config's rule (:func:`chip_rule`) on a chip config (datapath or learning engine) through
    :func:`emulator.run`, trials in
    batches of ``batch`` (the emulator's results do not depend on the split).

    Returns (W_record (R+1, K, M, N) incl. the stored initial weights at t = 0, or None;
    t_s (R+1,); final weights (K, M, N); counters summed over batches).  The emulator stores
    somatic weights (identity parametrization).
    """
    from natgrad.protocol import chunk_steps      # short chunks: Ctrl-C is handled between them
    backend = backend_for(cfg)
    if not getattr(task.f, "is_identity", False):
        raise ValueError("the integer emulator runs the somatic (identity) parametrization only")
    rec = ("weights",) if record_every else ()
    recs, finals, counters, t = [], [], {}, None
    all_trials = np.arange(task.n_trials) if trials is None else np.asarray(trials, np.int64)
    for b0 in range(0, all_trials.size, batch):
        tr = all_trials[b0:b0 + batch]
        rule = backend.rule()
        if all_trials.size > batch:
            _note(f"{cfg.name} {rule}: trials {tr[0]}..{tr[-1]} of {all_trials.size}")
        _status(f"{cfg.name} {rule}: trials {tr[0]}..{tr[-1]} of {all_trials.size}, {steps} steps")
        res = backend.run(task, steps, seed, eta=eta, record=rec,
                          record_every=record_every or 0, trials=tr,
                          chunk_steps=chunk_steps(len(tr)))
        finals.append(res.w_final)
        if record_every:
            recs.append(np.concatenate([backend.stored_weights(task.w_init[tr], task, eta)[None],
                                        res.record["weights"]], axis=0))
            t = np.concatenate([[0.0], res.record_t_s])
        for var, c in res.counters.items():
            dst = counters.setdefault(var, {"first_step": {}})
            for k, v in c.items():
                if k != "first_step":
                    dst[k] = dst.get(k, 0) + int(v)
    Wr = np.concatenate(recs, axis=1) if record_every else None
    return Wr, t, np.concatenate(finals, axis=0), counters


def chip_initial(cfg, w, task: Task, eta: float):
    """Initial weights as the chip stores them (rounded to its grid, saturated)."""
    return backend_for(cfg).stored_weights(w, task, eta)


def counters_summary(counters: dict) -> dict:
    """Non-zero saturation/overflow/underflow counts per variable."""
    out = {}
    for var, c in counters.items():
        nz = {k: int(v) for k, v in c.items() if k != "first_step" and v}
        if nz:
            out[var] = nz
    return out


def weight_range(cfg, task: Task | None = None, eta: float | None = None) -> float | None:
    """Largest representable |w| of a chip config (of the task's design where the config
    designs per task), None for the float reference."""
    return None if cfg is None else backend_for(cfg).weight_range(task, eta)


def curve_metrics(task: Task, Wr: np.ndarray, seed: int, n_test: int = 50, trials=None):
    """(rmse, kl, wdist), each (R, K), of recorded weights Wr (R, K, M, N) of ``trials``
    (default: all of the task's)."""
    tr = np.arange(task.n_trials) if trials is None else np.asarray(trials, np.int64)
    Xt = test_set(task, seed, n_test, tr)
    Wt = task.w_target[tr]
    rm = np.array([rate_rmse_hz(w, Wt, Xt, task.params)[:, 0] for w in Wr])
    kl = np.array([kl_cost(w, Wt, Xt, task.params)[:, 0] for w in Wr])
    wd = np.array([weight_distance(w, Wt)[:, 0] for w in Wr])
    return rm, kl, wd


def first_below(t, y, thr):
    """First time at which y < thr (None if never)."""
    idx = np.nonzero(np.asarray(y) < thr)[0]
    return float(t[idx[0]]) if idx.size else None


# ---------------------------------------------------------------------------- angles
def angle_deg(a, b, axis=-1):
    """Angle between vectors along ``axis`` in degrees (NaN for zero vectors)."""
    num = np.sum(a * b, axis=axis)
    den = np.sqrt(np.sum(a * a, axis=axis) * np.sum(b * b, axis=axis))
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.clip(num / den, -1.0, 1.0)
    return np.degrees(np.arccos(c))


# ---------------------------------------------------------------------------- output
def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return _jsonable(o.tolist())
    if isinstance(o, (np.floating, float)):
        f = float(o)
        return f if math.isfinite(f) else None
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.bool_,)):
        return bool(o)
    return o


def jsonable(o):
    """Plain-JSON copy of a result dict (arrays to lists, NaN/inf to null)."""
    return _jsonable(o)


def plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot
    return pyplot


def save_fig(fig, out: Path | None, name: str, files: list) -> None:
    if out is None:
        return
    Path(out).mkdir(parents=True, exist_ok=True)
    fig.savefig(Path(out) / name, dpi=110)
    files.append(name)


def write_json(result: dict, out: Path | None, name: str) -> None:
    if out is None:
        return
    Path(out).mkdir(parents=True, exist_ok=True)
    with open(Path(out) / f"{name}.json", "w") as fh:
        json.dump(jsonable(result), fh, indent=1)


def finish(result: dict, out: Path | None, name: str, plot, timer) -> dict:
    """Close an experiment: wall time, its figures (``plot(result, out)``), ``NAME.json``."""
    result["wall_s"] = timer()
    result["figures"] = []
    if STAGE is not None:
        STAGE("writing figures and JSON")
    plot(result, out)
    write_json(result, out, name)
    return result


class Timer:
    def __init__(self):
        self.t0 = time.perf_counter()

    def __call__(self) -> float:
        return round(time.perf_counter() - self.t0, 2)
