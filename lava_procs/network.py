"""Build and run the path-1 network: spike sources -> NatGradNeuron -> sink, in Lava.

    RingBuffer(X) --x_in-->  NatGradNeuron  --s_out--> RingBuffer sink (M, steps)
    RingBuffer(Y) --y_in-->

X and Y are the emulator's own spikes (:class:`emulator.spikes.SpikeSource`), stored as
(units, steps) ring buffers.  Lava's source sends column ``time_step - 1`` in time step
``time_step`` (Lava counts from 1) and the neuron reads it in the same time step, so Lava
time step t carries global step k = t - 1 (pinned by ``tests/lava_procs/test_lava_path1.py``).  The
sink stores the student spike of step k in column k.
"""
from __future__ import annotations

import time

import numpy as np
from lava.magma.core.model.py.model import PyLoihiModelToPyAsyncModel
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.io.sink import PyReceiveModelFixed, PyReceiveModelFloat
from lava.proc.io.sink import RingBuffer as SinkBuffer
from lava.proc.io.source import PySendModelFixed, PySendModelFloat
from lava.proc.io.source import RingBuffer as SourceBuffer

from emulator import datapath
from emulator.discretize import discretize
from emulator.hwconfig import HwConfig, load
from emulator.result import RunResult
from emulator.spikes import SpikeSource
from emulator.task import Task
from lava_procs.natgrad_neuron import (BACKENDS, STATE_VARS, TAGS, NatGradNeuron, PyNatGradNeuronFixed,
                                       PyNatGradNeuronFloat, numba_available)

__all__ = ["run", "run_lava", "build_network", "SYNCS", "VAR_NAMES"]

#: 'async': every ProcessModel converted by Lava's PyLoihiModelToPyAsyncModel (no per-step
#: phase handshake, channels still carry one message per step); 'loihi': LoihiProtocol.
SYNCS = ("async", "loihi")
#: Vars of NatGradNeuron read after the run.
VAR_NAMES = ("a_m", "a_s", "x", "weights", "gamma", "v", "sigma", "err", "post", "spikes",
             "n_spikes", "counts", "first", "k")

_MODELS = {  # tag -> (source, neuron, sink) LoihiProtocol models
    "fixed_pt": (PySendModelFixed, PyNatGradNeuronFixed, PyReceiveModelFixed),
    "floating_pt": (PySendModelFloat, PyNatGradNeuronFloat, PyReceiveModelFloat),
}
_ASYNC: dict = {}


def _async_models(tag: str):
    if tag not in _ASYNC:
        _ASYNC[tag] = tuple(PyLoihiModelToPyAsyncModel(m) for m in _MODELS[tag])
    return _ASYNC[tag]


def _check_exact_get(d) -> None:
    """Var.get() transfers each element as a float64: integers must stay below 2**53."""
    widths = {name: var.acc_fmt.bits for name, var in d.variables.items()}
    wide = {k: w for k, w in widths.items() if w > 53}
    if wide:
        raise ValueError(f"config {d.cfg.name!r}: Var.get() of Lava 0.10 passes values as "
                         f"float64, exact only up to 53 bits; too wide: {wide}")


def _warm_numba(d, task: Task, trial: int, seed: int) -> None:
    """Compile (or load) the fused kernel in this process, before Lava forks its workers."""
    from emulator.kernels import run_chunk
    from emulator.runner import record_arrays
    m, n = task.M, task.N
    st = datapath.init_state(d, task.w_init[trial][None], np.array([trial]))
    run_chunk(d, st, np.zeros((1, 1, n), np.uint8), np.zeros((1, 1, m), np.uint8), seed, 0,
              record_arrays(0, 1, m, n), 0, np.zeros((1, m), np.int64))


def build_network(config, task: Task, steps: int, seed: int, tag: str = "fixed_pt",
                  trial: int = 0, *, eta: float | None = None, backend: str = "auto",
                  spikes=None):
    """Processes of the path-1 network and the spikes they play.

    Returns ``(neuron, source_x, source_y, sink, X, Y)`` with X (steps, N), Y (steps, M)
    spikes of trial ``trial``: those of ``SpikeSource(task, seed, [trial])`` unless
    ``spikes=(X, Y)`` gives them.
    """
    if tag not in TAGS:
        raise ValueError(f"tag must be one of {TAGS} (got {tag!r})")
    if not isinstance(task, Task):
        raise ValueError(f"task must be a Task (got {type(task).__name__})")
    steps = int(steps)
    if steps < 1:
        raise ValueError(f"steps must be >= 1 (got {steps})")
    if not 0 <= int(trial) < task.n_trials:
        raise ValueError(f"trial must lie in [0, {task.n_trials}) (got {trial!r})")
    trial = int(trial)
    if spikes is None:
        X, Y = SpikeSource(task, seed, np.array([trial])).next(steps)
        X, Y = X[:, 0, :], Y[:, 0, :]
    else:
        X, Y = (np.asarray(a, dtype=np.uint8) for a in spikes)
        if X.shape != (steps, task.N) or Y.shape != (steps, task.M):
            raise ValueError(f"spikes must be X (steps, N) = {(steps, task.N)} and Y (steps, M) "
                             f"= {(steps, task.M)} (got {X.shape} and {Y.shape})")
    neuron = NatGradNeuron(config=config, params=task.params, rates=task.rates,
                           w_init=task.w_init[trial], eta=eta, seed=seed, trial=trial, f=task.f,
                           tag=tag, backend=backend, name=f"natgrad_trial{trial}")
    source_x = SourceBuffer(data=np.ascontiguousarray(X.T, dtype=np.int32))
    source_y = SourceBuffer(data=np.ascontiguousarray(Y.T, dtype=np.int32))
    sink = SinkBuffer(shape=(task.M,), buffer=steps)
    source_x.s_out.connect(neuron.x_in)
    source_y.s_out.connect(neuron.y_in)
    neuron.s_out.connect(sink.a_in)
    return neuron, source_x, source_y, sink, X, Y


def run_lava(config, task: Task, steps: int, seed: int, tag: str = "fixed_pt", trial: int = 0,
             *, eta: float | None = None, backend: str = "auto", sync: str = "async",
             read_output: bool = True, spikes=None) -> dict:
    """Run trial ``trial`` of ``task`` for ``steps`` steps as one Lava network.

    Parameters
    ----------
    config : HwConfig, bundled name or path (``fixed_pt`` needs ``kind: fixed``; ignored by
        ``floating_pt``)
    task, steps, seed : as :func:`emulator.run`
    tag : ``'fixed_pt'`` (integer emulator datapath) or ``'floating_pt'`` (float64 reference)
    trial : global trial id
    eta : learning rate in code units (default :func:`emulator.runner.default_eta`)
    backend : fixed_pt step: ``'numba'`` (emulator.kernels), ``'numpy'`` (emulator.datapath)
        or ``'auto'`` (numba when it imports); bit-identical
    sync : ``'async'`` (default, fast) or ``'loihi'`` (LoihiProtocol phase handshake every
        step); identical results
    read_output : read the sink (one message per element: ~steps*M messages)
    spikes : optional (X (steps, N), Y (steps, M)) 0/1 arrays played instead of the
        SpikeSource spikes (for tests)

    The network runs in ONE blocking ``run(RunSteps(steps), Loihi2SimCfg(select_tag=tag))``;
    the Vars are read with ``get()`` before ``stop()``, which is called in ``finally:``.

    Returns a dict: ``vars`` (every Var of :data:`VAR_NAMES`; int64 for fixed_pt),
    ``w`` (M, N) float weights, ``w_int`` (M, N) visible integer weights (fixed_pt),
    ``output_spikes`` (steps, M) student spikes per step from the sink (None unless
    ``read_output``), ``n_spikes`` (M,) their count (a Var, cheap to read),
    ``teacher_spikes`` (steps, M), ``counters`` (as RunResult.counters),
    ``k`` next global step, ``d`` the Discretized record (fixed_pt), ``backend``, ``sync``,
    ``tag``, ``timing`` (seconds: ``setup`` compile + start, ``run``, ``read``).
    """
    if sync not in SYNCS:
        raise ValueError(f"sync must be one of {SYNCS} (got {sync!r})")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS} (got {backend!r})")
    if tag not in TAGS:
        raise ValueError(f"tag must be one of {TAGS} (got {tag!r})")
    cfg = config if config is None or isinstance(config, HwConfig) else load(config)
    d = None
    if tag == "fixed_pt":
        if cfg is None:              # any other kind is refused by discretize, naming it
            raise ValueError("tag 'fixed_pt' needs a fixed-point config (kind: fixed)")
        if eta is None:
            from emulator.runner import default_eta
            eta = default_eta()
        d = discretize(cfg, task.params, task.rates, float(eta))
        _check_exact_get(d)
        if backend == "auto":
            backend = "numba" if numba_available() else "numpy"
        if backend == "numba":
            _warm_numba(d, task, int(trial), int(seed))
    else:
        cfg = None
        backend = "float64"

    t0 = time.perf_counter()
    neuron, source_x, source_y, sink, X, Y = build_network(
        cfg, task, steps, seed, tag, trial, eta=eta,
        backend=backend if tag == "fixed_pt" else "auto", spikes=spikes)
    exceptions = {}
    if sync == "async":
        models = _async_models(tag)
        exceptions = {source_x: models[0], source_y: models[0], neuron: models[1],
                      sink: models[2]}
    run_cfg = Loihi2SimCfg(select_tag=tag, exception_proc_model_map=exceptions)
    timing = {}
    try:
        neuron.create_runtime(run_cfg=run_cfg)      # compile + start the workers
        t1 = time.perf_counter()
        neuron.run(condition=RunSteps(num_steps=int(steps), blocking=True), run_cfg=run_cfg)
        t2 = time.perf_counter()
        values = {name: getattr(neuron, name).get() for name in VAR_NAMES}
        out = sink.data.get() if read_output else None
        t3 = time.perf_counter()
        timing = {"setup": t1 - t0, "run": t2 - t1, "read": t3 - t2}
    finally:
        neuron.stop()

    if tag == "fixed_pt":
        values = {k: np.asarray(v).astype(np.int64) for k, v in values.items()}
        w_int = values["weights"] >> d.w_extra
        w = w_int * 2.0**-d.w_frac
    else:
        values = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
        for k in ("n_spikes", "counts", "first", "k"):
            values[k] = values[k].astype(np.int64)
        w_int = None
        w = values["weights"].copy()
    from emulator.runner import counters_dict
    return {
        "tag": tag, "backend": backend, "sync": sync, "steps": int(steps), "seed": int(seed),
        "trial": int(trial), "config_name": None if cfg is None else cfg.name,
        "vars": values, "w": w, "w_int": w_int,
        "output_spikes": None if out is None else np.asarray(out).T.astype(np.int64),
        "n_spikes": values["n_spikes"].copy(), "teacher_spikes": Y.astype(np.int64),
        "counters": counters_dict(values["counts"], values["first"]),
        "k": int(values["k"][0]), "d": d, "timing": timing,
    }


#: config kind -> what runs it under Lava: path 2 (LearningDense + the learning neuron), or
#: the ProcessModel tag of the natgrad neuron (the one place lava_procs reads the kind)
_PATH_OF_KIND = {"learning_engine": "path 2", "fixed": "fixed_pt", "float64": "floating_pt"}


def run(config, task: Task, steps: int, seed: int, *, trial: int = 0, eta: float | None = None,
        backend: str = "auto", sync: str = "async") -> RunResult:
    """Run trial ``trial`` of ``task`` under Lava and return the emulator's result type.

    The public twin of :func:`emulator.run` for the configs Lava runs here: a
    ``kind: learning_engine`` config runs path 2 (Lava's ``LearningDense`` with the
    design's rule string and the learning neuron, :mod:`lava_procs.learning_engine`); a
    ``kind: fixed`` config runs the ``fixed_pt`` ProcessModel (the emulator's integer
    datapath), ``kind: float64`` the ``floating_pt`` one.  The result has one trial
    (B = 1); for fixed configs ``state`` is the final :class:`emulator.datapath.State` read
    back from the Vars, so it compares bit for bit with ``emulator.run(...,
    trials=[trial]).state``.  Nothing is recorded (``record`` is empty).
    """
    cfg = config if isinstance(config, HwConfig) else load(config)
    path = _PATH_OF_KIND[cfg.kind]
    if path == "path 2":
        return _run_learning_engine(cfg, task, steps, seed, trial, eta)
    tag = path
    out = run_lava(cfg, task, steps, seed, tag=tag, trial=trial, eta=eta, backend=backend,
                   sync=sync, read_output=False)
    values = out["vars"]
    state = None
    if tag == "fixed_pt":
        fields = dict(STATE_VARS)
        state = datapath.State(trials=np.array([int(trial)], np.int64), counts=values["counts"],
                               first=values["first"], step=out["k"],
                               **{fields[var]: np.asarray(values[var])[None] for var in fields})
    return RunResult(config_name=cfg.name, steps=int(steps), seed=int(seed),
                     trials=np.array([int(trial)], np.int64), w_final=out["w"][None],
                     w_int=None if out["w_int"] is None else out["w_int"][None],
                     counters=out["counters"] if tag == "fixed_pt" else {}, record={},
                     record_t_s=np.zeros(0), output_spikes=out["n_spikes"][None],
                     teacher_spikes=out["teacher_spikes"].sum(axis=0, dtype=np.int64)[None],
                     state=state)


def _run_learning_engine(cfg: HwConfig, task: Task, steps: int, seed: int, trial: int,
                         eta: float | None) -> RunResult:
    """Path 2 on a learning-engine config: the same design as :func:`emulator.run`."""
    from emulator import learning
    from emulator.runner import default_eta, le_counters_dict
    from lava_procs.learning_engine import run_lava_le
    d = learning.design_for_config(cfg, task, default_eta() if eta is None else float(eta))
    out = run_lava_le(d, task, steps, seed, int(trial))
    return RunResult(config_name=cfg.name, steps=int(steps), seed=int(seed),
                     trials=np.array([int(trial)], np.int64), w_final=out["w"][None],
                     w_int=out["w_int"][None], counters=le_counters_dict(out["counters"]),
                     record={}, record_t_s=np.zeros(0), output_spikes=None,
                     teacher_spikes=out["teacher_spikes"].sum(axis=0, dtype=np.int64)[None],
                     state=out)
