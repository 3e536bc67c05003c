"""The one public entry point: ``emulator.run(config, task, steps, seed, ...)``.

Float64 and fixed-point configs run through the same call, on identical spikes from
:class:`emulator.spikes.SpikeSource`, and return the same :class:`RunResult`, so that
float and fixed runs compare directly.  Time is processed in chunks (memory stays bounded
for 16M-step runs); neither the chunk size nor the batch split changes any bit.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from emulator import datapath, variables
from emulator.discretize import discretize
from emulator.drive import drive
from emulator.float_run import run_float
from emulator.hwconfig import HwConfig, load
from emulator.result import RunResult
from emulator.spikes import SpikeSource
from emulator.task import Task
from fixedpoint.counters import KINDS, OverflowCounters

#: Variables that can be recorded (declared in :mod:`emulator.variables`).
RECORDABLE = variables.RECORDABLE


def record_scales(d) -> dict:
    """Float value of one integer LSB of every recordable variable."""
    return {r: d.variables[variables.RECORD_VARIABLE[r]].lsb for r in RECORDABLE}


def record_arrays(n_rec: int, B: int, M: int, N: int) -> dict:
    """Zeroed int64 recording arrays (n_rec, B, ...) of every recordable variable."""
    dims = {"B": B, "M": M, "N": N}
    return {r: np.zeros((n_rec,) + tuple(dims[a] for a in variables.RECORD_SHAPES[r]), np.int64)
            for r in RECORDABLE}


def extremes_dict(d, lo: np.ndarray, hi: np.ndarray) -> dict:
    """Running extremes ``State.lo`` / ``State.hi`` (B, len(RECORDABLE)) integer codes ->
    ``{name: (min (B,), max (B,))}`` in physical units (NaN where no step was seen); the
    weights as visible (``acc >> extra_frac``: floor shifts keep the order)."""
    scales = record_scales(d)
    out = {}
    for q, name in enumerate(RECORDABLE):
        seen = lo[:, q] <= hi[:, q]
        shift = d.w_extra if name == "weights" else 0
        out[name] = tuple(np.where(seen, (a[:, q] >> shift) * scales[name], np.nan)
                          for a in (lo, hi))
    return out


def counters_dict(counts: np.ndarray, first: np.ndarray) -> dict:
    """Counter arrays of the datapath (:data:`emulator.variables.COUNTERS` order) -> nested
    dict per variable: ``{'overflow': n, 'saturation': n, 'underflow': n, 'first_step':
    {kind: step}}``, through :class:`fixedpoint.OverflowCounters`."""
    c = OverflowCounters()
    for (var, kind), n, f in zip(variables.COUNTERS, counts, first):
        c.add(var, kind, int(n), int(f) if f >= 0 else None)
    return {name: {**{k: c.count(name, k) for k in KINDS},
                   "first_step": {k: c.first_step(name, k) for k in KINDS
                                  if c.first_step(name, k) is not None}}
            for name in c.names}


def _as_config(config) -> HwConfig:
    if isinstance(config, HwConfig):
        return config
    return load(config)


def default_eta() -> float:
    """Learning rate of the approximate rule, code units (docs/model.md#constants, eta_A = 5.5e-4)."""
    from emulator.reference import ETA_CODE
    return ETA_CODE["approx"]


def run(config, task: Task, steps: int, seed: int, *, eta: float | None = None,
        record: tuple = (), record_every: int = 0, backend: str = "numba",
        chunk_steps: int = 4000, trials=None, parallel: bool | None = None,
        fused: bool = True, progress: Callable[[int], None] | None = None,
        design=None) -> RunResult:
    """Run the approximate natural-gradient rule on ``task`` for ``steps`` steps.

    Parameters
    ----------
    config : HwConfig, path, or bundled name (``'loihi2'``, ``'float64'``, ...)
    task : Task (teacher, rates, initial weights)
    steps : number of 0.5-ms steps
    seed : seed of the counter RNG (spikes and stochastic rounding)
    eta : learning rate in code units (default: the paper's eta_A = 5.5e-4)
    record : names from :data:`RECORDABLE` to record every ``record_every`` steps
    backend : ``'numba'`` (fused kernel) or ``'numpy'``; bit-identical
    chunk_steps : steps per time chunk (does not change results)
    trials : global trial ids to run (default: all of the task's trials)
    parallel : numba backend and float64: trials on all cores (same bits).  Default (None): on
        when there are several trials and this is not a multiprocessing child (a sweep's
        workers already fill the cores); blocks of trials on threads
        (:mod:`emulator.threads`)
    fused : numba backend only: draw the spikes inside the kernel (same bits, no spike
        arrays; :func:`emulator.kernels.run_fused`, :func:`emulator.learning.kernel.run_fused`);
        False feeds the kernel chunks of :class:`SpikeSource` arrays (the float64 run always
        draws them inside unless it records the USP or traces)
    progress : called with the number of steps done after every chunk
    design : the config's compiled design of ``task`` at ``eta`` (the datapath's
        :class:`emulator.discretize.Discretized`, the learning engine's
        :class:`emulator.learning.Design`), when the caller already has it; default: compiled here
    """
    cfg = _as_config(config)
    steps = int(steps)
    if steps < 0:
        raise ValueError(f"steps must be >= 0 (got {steps})")
    if chunk_steps < 1:
        raise ValueError(f"chunk_steps must be >= 1 (got {chunk_steps})")
    if backend not in ("numba", "numpy"):
        raise ValueError(f"backend must be 'numba' or 'numpy' (got {backend!r})")
    if record and record_every < 1:
        raise ValueError("record_every must be >= 1 when variables are recorded")
    eta = default_eta() if eta is None else float(eta)
    trials = np.arange(task.n_trials) if trials is None else np.asarray(trials, np.int64)
    engine = _ENGINES[cfg.kind]              # the one place the emulator reads the kind
    return engine(cfg, task, steps, seed, eta=eta, record=record, record_every=record_every,
                  backend=backend, chunk_steps=chunk_steps, trials=trials, progress=progress,
                  parallel=parallel, fused=fused, design=design)


def run_datapath(cfg: HwConfig, task: Task, steps: int, seed: int, *, eta: float, record=(),
                 record_every: int = 0, backend: str = "numba", chunk_steps: int = 4000,
                 trials=None, progress=None, parallel: bool | None = None, fused: bool = True,
                 design=None) -> RunResult:
    """:func:`run` on a ``kind: fixed`` config: the integer datapath (its numba kernel, or
    the numpy step; bit-identical).  ``state`` is the final :class:`emulator.datapath.State`."""
    unknown = set(record) - set(RECORDABLE)
    if unknown:
        raise ValueError(f"record: unknown variable {sorted(unknown)[0]!r} "
                         f"(allowed: {', '.join(RECORDABLE)})")
    trials = np.arange(task.n_trials) if trials is None else np.asarray(trials, np.int64)
    d = discretize(cfg, task.params, task.rates, eta) if design is None else design
    src = SpikeSource(task, seed, trials)
    state = datapath.init_state(d, task.w_init[trials], trials)
    B, M, N = state.acc.shape
    rec_int = record_arrays(steps // record_every if record_every else 0, B, M, N)
    out_spk = np.zeros((B, M), np.int64)
    teach_spk = np.zeros((B, M), np.int64)
    if backend == "numba" and parallel is None:
        from emulator.kernels import default_parallel
        parallel = default_parallel(B)
    engine = _DatapathEngine(d, state, src, seed, record_every, rec_int, out_spk, teach_spk,
                             backend, parallel)
    row = drive(engine, src, steps, chunk_steps, record_every=record_every, fused=fused,
                teach=teach_spk, progress=progress)
    scales = record_scales(d)
    recorded = {name: rec_int[name][:row] * scales[name] for name in record}
    t_rec = (np.arange(1, row + 1) * record_every) * task.params.dt if record_every else np.zeros(0)
    w_vis = state.acc >> d.w_extra
    return RunResult(config_name=cfg.name, steps=steps, seed=seed, trials=trials,
                     w_final=w_vis * 2.0**-d.w_frac, w_int=w_vis,
                     counters=counters_dict(state.counts, state.first), record=recorded,
                     record_t_s=t_rec, output_spikes=out_spk, teacher_spikes=teach_spk,
                     state=state, extremes=extremes_dict(d, state.lo, state.hi))


#: Learning-engine neuron counters -> (variable, kind) of :attr:`RunResult.counters`.
LE_COUNTERS = {"potential_saturation": ("potential", "saturation"),
               "post_carry": ("post", "saturation"),
               "vq_saturation": ("vq", "saturation"),
               "gamma_saturation": ("gamma_s", "saturation"),
               "carry_saturation": ("carry", "saturation"),
               "word_saturation": ("neuron_word", "saturation"),
               "input_saturation": ("neuron_input", "saturation"),
               # LearningDense's own clips (the emulator counts what Lava clips silently)
               "tag_saturation": ("tag_2", "saturation"),
               "weight_saturation": ("weights", "saturation"),
               "acc_saturation": ("accumulator", "saturation"),
               "trace_saturation": ("trace", "saturation")}
#: What the learning-engine model records (its neuron's formats are not the datapath's), in
#: physical units: the weights, and the state of
#: :data:`emulator.learning.driver.STATE_RECORDS` (traces x1, x2 in trace units; V and the
#: coded Vq in mV; sigma; e; gamma_s; hbar; the post factor, the amount with the carry, its
#: coded form and the carry in post-factor units; tag_2's residual ``tag_2 - d_offset`` in
#: weight units), plus ``weights_before`` / ``tag_2_before`` one step before each recorded
#: step.
LE_RECORDABLE = ("weights", "x1", "x2", "potential", "vq", "sigma", "error", "gamma_s", "hbar",
                 "post", "amount", "coded", "carry", "tag_2", "weights_before", "tag_2_before")


def le_record_scales(d) -> dict:
    """Physical value of one integer code of every :data:`LE_RECORDABLE` quantity but tag_2
    (whose residual is ``(code - d_offset)`` times its scale) for a learning-engine Design."""
    from emulator.learning.extremes import code_scales
    sc = code_scales(d)
    sc.update(hbar=2.0 ** -d.neuron.hbar_frac,
              weights_before=sc["weights"], tag_2_before=sc["tag_2"])
    return sc


def le_counters_dict(counters: dict) -> dict:
    """Learning-engine counters ``{'potential_saturation': n, ...}`` -> the nested per-variable
    dict of :attr:`RunResult.counters` (first steps are not tracked by the engine model)."""
    c = OverflowCounters()
    for name, n in counters.items():
        var, kind = LE_COUNTERS.get(name, (name.rsplit("_", 1)[0], name.rsplit("_", 1)[-1]))
        c.add(var, kind if kind in KINDS else "saturation", int(n))
    return {name: {**{k: c.count(name, k) for k in KINDS}, "first_step": {}} for name in c.names}


def run_learning_engine(cfg: HwConfig, task: Task, steps: int, seed: int, *, eta: float,
                        record=(), record_every: int = 0, backend: str = "numba",
                        chunk_steps: int = 4000, trials=None, progress=None,
                        parallel: bool | None = None, fused: bool = True,
                        design=None) -> RunResult:
    """:func:`run` on a ``kind: learning_engine`` config: the design of the task on that
    engine (:func:`emulator.learning.design_for_config`) run by the learning-engine model,
    bit-exact with Lava path 2 (``lava_procs.run``).  ``state`` is the engine's own result
    (:class:`emulator.learning.LEResult`, with the neuron state and the Design)."""
    from emulator import learning
    bad = set(record) - set(LE_RECORDABLE)
    if bad:
        raise ValueError(f"record: {sorted(bad)[0]!r} is not recorded by the learning-engine model "
                         f"(allowed: {', '.join(LE_RECORDABLE)})")
    d = learning.design_for_config(cfg, task, eta) if design is None else design
    res = learning.run(task, steps, seed, d, trials=trials,
                       record_every=record_every if record else 0, chunk_steps=chunk_steps,
                       backend=backend, parallel=parallel, fused=fused, progress=progress,
                       record_state=bool(set(record) - {"weights"}))
    res.design = d
    rec = {"weights": res.record_w} if "weights" in record else {}
    scales = le_record_scales(d)
    for name in set(record) - {"weights"}:
        off = d.d_offset if name.startswith("tag_2") else 0
        rec[name] = (res.record_state[name] - off) * scales[name]
    from emulator.learning.extremes import extremes_physical
    return RunResult(config_name=cfg.name, steps=steps, seed=seed, trials=res.trials,
                     w_final=res.w_final, w_int=res.w_int,
                     counters=le_counters_dict({**res.counters, **res.synapse_counters}),
                     record=rec,
                     record_t_s=res.record_t_s if record else np.zeros(0), output_spikes=None,
                     teacher_spikes=res.teacher_spikes, state=res,
                     extremes=extremes_physical(d, res.lo, res.hi))


def _run_float64(cfg: HwConfig, task: Task, steps: int, seed: int, *, eta: float, record=(),
                 record_every: int = 0, backend: str = "numba", chunk_steps: int = 4000,
                 trials=None, progress=None, parallel: bool | None = None, fused: bool = True,
                 design=None) -> RunResult:
    """:func:`run` on a ``kind: float64`` config (:func:`emulator.float_run.run_float`; it
    draws the spikes inside its compiled loop, whatever ``backend`` and ``fused`` say)."""
    unknown = set(record) - set(RECORDABLE)
    if unknown:
        raise ValueError(f"record: unknown variable {sorted(unknown)[0]!r} "
                         f"(allowed: {', '.join(RECORDABLE)})")
    return run_float(cfg, task, steps, seed, eta=eta, record=record, record_every=record_every,
                     chunk_steps=chunk_steps, trials=trials, progress=progress,
                     parallel=parallel)


#: config kind -> the engine that runs it
_ENGINES = {"float64": _run_float64, "fixed": run_datapath,
            "learning_engine": run_learning_engine}


class _DatapathEngine:
    """The integer datapath's steps for :func:`emulator.drive.drive`: its fused kernel, its
    kernel on spike arrays, or the numpy step (bit-identical)."""

    def __init__(self, d, state, src, seed, record_every, rec_int, out_spk, teach_spk,
                 backend, parallel):
        self.d, self.state, self.src, self.seed = d, state, src, seed
        self.every, self.rec_int, self.out_spk, self.teach_spk = (record_every, rec_int,
                                                                   out_spk, teach_spk)
        self.backend, self.parallel = backend, parallel
        self.idx = datapath.Indices(state.trials, *state.acc.shape[1:])
        if backend != "numba":
            self.fused = None                # the numpy step takes spike arrays

    def fused(self, n, done, rows):
        from emulator.kernels import run_fused
        run_fused(self.d, self.state, self.src, n, self.seed, self.every, self.rec_int, rows[0],
                  self.out_spk, self.teach_spk, self.parallel)

    def chunk(self, spikes, done, rows):
        X, Y = spikes
        if self.backend == "numba":
            from emulator.kernels import run_chunk
            run_chunk(self.d, self.state, X, Y, self.seed, self.every, self.rec_int, rows[0],
                      self.out_spk, self.parallel)
            return
        row = rows[0]
        for t in range(X.shape[0]):
            datapath.step(self.d, self.state, X[t], Y[t], self.seed, self.idx)
            self.out_spk += self.state.spikes
            if self.every and self.state.step % self.every == 0:
                _store(self.rec_int, row, self.state, self.d.w_extra)
                row += 1


def _store(rec_int, row, st, w_extra) -> None:
    for name in RECORDABLE:
        value = getattr(st, variables.RECORD_FIELD[name])
        rec_int[name][row] = value >> w_extra if name == "weights" else value
