"""The learning-engine emulator mode: :func:`run` a task, numba or numpy backend.

Drives the learning neuron (:mod:`.neuron`) and the LearningDense replica
(:mod:`.lava_replica`), or the fused kernel (:mod:`.kernel`, bit-identical), over the
spikes of :class:`emulator.spikes.SpikeSource`.  Lava's counterpart is a network of a
``LearningDense`` and the learning neuron run with ``RunSteps`` (see
:func:`lava_procs.learning_engine.run_lava_le`).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from emulator.drive import drive, every_step_and_before, record_rows
from emulator.threads import default_parallel
from emulator.spikes import SpikeSource
from emulator.task import Task
from fixedpoint import rng

from .rule_design import Design, design_for_task, quantize_weights
from .kernel import NLAST_ROWS, LEKernelState, kernel_const, run_chunk, run_fused
from .lava_replica import (SYNAPSE_COUNTERS, LavaRandoms, lava_trace_seed, synapse_init,
                           synapse_step)
from .neuron import NeuronState, neuron_counters, neuron_init, neuron_step
from .extremes import extremes_init, note_neuron, note_synapse

#: What ``record_state`` snapshots after every recorded step (integer codes, the formats of
#: :mod:`.extremes`; ``coded`` in the units of ``amount``): name -> (where, field).
STATE_RECORDS = {"x1": ("x", 0), "x2": ("x", 1), "potential": ("neuron", "v"),
                 "vq": ("neuron", "vq"), "sigma": ("neuron", "sigma"), "error": ("neuron", "err"),
                 "gamma_s": ("neuron", "gamma"), "hbar": ("neuron", "hbar"),
                 "post": ("neuron", "post"), "amount": ("neuron", "amount"),
                 "coded": ("neuron", "coded"), "carry": ("neuron", "carry"),
                 "weights": ("synapse", "w"), "tag_2": ("synapse", "dtag")}
#: ... and one step before every recorded step (the update of the recorded step)
BEFORE_RECORDS = ("weights", "tag_2")


@dataclasses.dataclass
class LEResult:
    steps: int
    seed: int
    trials: np.ndarray
    w_int: np.ndarray           #: (B, M, N) final integer weights
    w_final: np.ndarray         #: float weights w_int * 2**-w_frac
    x_traces: np.ndarray        #: (B, 2, N) final x1, x2
    neuron: NeuronState
    counters: dict
    record_w: np.ndarray        #: (n_rec, B, M, N) float weights every record_every steps
    record_t_s: np.ndarray
    events: np.ndarray          #: (B, M, 2) positive / negative events (graded: levels) sent
    teacher_spikes: np.ndarray  #: (B, M)
    #: engine-side counters (:data:`SYNAPSE_COUNTERS`): tag_2 and weight saturations
    synapse_counters: dict = dataclasses.field(default_factory=dict)
    d_tag: np.ndarray | None = None  #: (B, M, N) final tag_2 (hidden bits), else None
    #: running extremes (B, N_EXTREMES) int64 codes of :data:`.extremes.EXTREME_VARIABLES`
    #: over every step of each trial (lo > hi: never seen)
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    #: with ``record_state``: name -> (n_rec, B, ...) integer codes of :data:`STATE_RECORDS`
    #: after every recorded step, and ``<name>_before`` (:data:`BEFORE_RECORDS`) one step
    #: before it; else empty
    record_state: dict = dataclasses.field(default_factory=dict)


def run(task: Task, steps: int, seed: int, d: Design | None = None, *, eta: float | None = None,
        trials=None, record_every: int = 0, chunk_steps: int = 4000, products=None,
        w_init_int: np.ndarray | None = None, backend: str = "numba", fused: bool = True,
        parallel: bool | None = None, progress=None, record_state: bool = False) -> LEResult:
    """Run the learning-engine mode on ``task`` (spikes from :class:`SpikeSource`).

    ``backend='numba'`` (fused kernel) and ``'numpy'`` (:func:`neuron_step` and
    :func:`synapse_step`) are bit-identical.  Trial ``t`` uses the Lava rng_seed
    :func:`lava_trace_seed` ``(seed, t)``, so it reproduces a Lava run of that trial.
    ``products`` replaces the design's rule (e.g. a deliberately mis-scaled one).
    Every width, format, epoch length and rounding mode comes from ``d.engine`` /
    ``d.neuron``.  The numba backend draws the spikes inside its loop (``fused=True``;
    ``False`` takes them from :meth:`SpikeSource.next`, same bits) and runs blocks of trials
    on threads when ``parallel`` (default: several trials in the main process, as
    :func:`emulator.threads.default_parallel`); every choice gives the same bits.
    ``progress(steps_done)`` is called after every chunk of ``chunk_steps``.
    ``record_state`` (with ``record_every``): also snapshot the traces, the neuron's values,
    the weights and tag_2 after every recorded step and the weights and tag_2 one step before
    it (:attr:`LEResult.record_state`); the chunks then end at those steps (same bits).
    The running extremes (:attr:`LEResult.lo`, ``hi``) are counted in every run.
    """
    if backend not in ("numba", "numpy"):
        raise ValueError(f"backend must be 'numba' or 'numpy' (got {backend!r})")
    if d is None:
        from emulator.reference import ETA_CODE
        d = design_for_task(task, ETA_CODE["approx"] if eta is None else eta)
    products = d.products if products is None else tuple(products)
    trials = np.arange(task.n_trials) if trials is None else np.asarray(trials, np.int64)
    steps = int(steps)
    w0 = quantize_weights(d, task.w_init[trials]) if w_init_int is None else w_init_int
    syn = synapse_init(w0, d.d_offset)
    neu = neuron_init(d, syn.w)
    lo, hi = extremes_init(syn.w, syn.dtag)
    b, m, n = syn.w.shape
    index = rng.trial_unit_index(trials, np.arange(m))
    tags = np.broadcast_to(d.tags[None, None, :], (b, m, n))
    rnd = LavaRandoms([lava_trace_seed(seed, t) for t in trials], d.engine.sr_seed)
    te = d.engine.t_epoch
    src = SpikeSource(task, seed, trials)
    n_rec = record_rows(0, steps, record_every)[1]
    rec_int = np.zeros((n_rec, b, m, n), np.int64)
    events = neu.events
    teach = np.zeros((b, m), np.int64)
    if backend == "numba":
        c = kernel_const(d, products)
        tr = np.asarray(trials, np.int64)
        st = LEKernelState(syn.w, syn.x, syn.a_buff, syn.tx, syn.ty, syn.yr, syn.dtag,
                           syn.counts, neu.a_m, neu.a_s, neu.hbar, neu.gamma, neu.v, neu.sigma,
                           neu.err, neu.p, neu.counts, neu.pend, neu.sent, neu.carry, events,
                           _pack(neu, NLAST_ROWS), np.stack([lo, hi]))
        for j, field in enumerate(NLAST_ROWS):      # the neuron's fields: views of the pack
            setattr(neu, field, st.nlast[j])
        lo, hi = st.ext[0], st.ext[1]
        par = default_parallel(b) if parallel is None else bool(parallel)
    snap = record_state and record_every > 0
    state_rec = {}
    if snap:
        _snapshot(state_rec, 0, record_every, syn, neu)
    engine = _Engine()
    if backend == "numba":
        def fused_steps(nn, done, rows):
            rx, ry, rw = rnd.next(nn, done, te)
            run_fused(c, st, src.kernel_args(), nn, rx, ry, rw, done, seed, tr, record_every,
                      rec_int, rows[0], teach, parallel=par)
            src.advance(nn)
        engine.fused = fused_steps

    def array_steps(spikes, done, rows):
        X, Y = spikes
        nn = X.shape[0]
        rx, ry, rw = rnd.next(nn, done, te)
        if backend == "numba":
            run_chunk(c, st, X, Y, rx, ry, rw, done, seed, tr, record_every, rec_int, rows[0],
                      parallel=par)
            return
        row = rows[0]
        for t in range(nn):
            k = done + t
            bap, y1, y2, y3 = neuron_step(d, neu, syn.a_buff, Y[t], k, seed, index)
            note_neuron(lo, hi, neu)
            synapse_step(d, syn, X[t], bap, y1, y2, y3, rx[t], ry[t], rw[t], tags, products,
                         k=k, seed=int(seed), trials=trials)
            note_synapse(lo, hi, syn)
            if record_every and (k + 1) % record_every == 0:
                rec_int[row] = syn.w
                row += 1
    engine.chunk = array_steps
    if snap:
        engine.chunk_end = lambda done: _snapshot(state_rec, done, record_every, syn, neu)
    row = drive(engine, src, steps, chunk_steps, record_every=record_every, fused=fused,
                teach=teach, progress=progress,
                next_stop=every_step_and_before(record_every) if snap else None)
    return LEResult(steps=steps, seed=seed, trials=trials, w_int=syn.w.copy(),
                    w_final=syn.w * d.lsb_w, x_traces=syn.x.copy(), neuron=neu,
                    counters=neuron_counters(neu), record_w=rec_int[:row] * d.lsb_w,
                    record_t_s=np.arange(1, row + 1) * record_every * task.params.dt,
                    events=events, teacher_spikes=teach,
                    synapse_counters=dict(zip(SYNAPSE_COUNTERS, syn.counts.tolist())),
                    d_tag=syn.dtag.copy() if d.dd_products else None, lo=lo, hi=hi,
                    record_state=_stack(state_rec, n_rec, syn, neu) if snap else {})


class _Engine:
    """The engine's steps for :func:`emulator.drive.drive` (set by :func:`run`)."""

    fused = None


def _stack(rec: dict, n_rec: int, syn, neu) -> dict:
    """The snapshots as arrays (n_rec, B, ...), empty ones shaped like the state."""
    out = {}
    for name in tuple(STATE_RECORDS) + tuple(f"{r}_before" for r in BEFORE_RECORDS):
        part, field = STATE_RECORDS[name.removesuffix("_before")]
        shape = np.shape(syn.x[:, field] if part == "x" else
                         getattr({"synapse": syn, "neuron": neu}[part], field))
        rows = rec.get(name, [])[:n_rec]
        out[name] = np.stack(rows) if rows else np.zeros((0,) + shape, np.int64)
    return out


def _pack(neu: NeuronState, fields) -> np.ndarray:
    """The neuron's (B, M) ``fields`` as one (len(fields), B, M) int64 array."""
    return np.stack([np.asarray(getattr(neu, f), np.int64) for f in fields])


def _snapshot(rec: dict, done: int, record_every: int, syn, neu) -> None:
    """Append the state after ``done`` steps to ``rec`` if step ``done - 1`` is recorded
    (every :data:`STATE_RECORDS`) or the next step is (``<name>_before`` of
    :data:`BEFORE_RECORDS`)."""
    where = {"synapse": syn, "neuron": neu}
    if done > 0 and done % record_every == 0:
        for name, (part, field) in STATE_RECORDS.items():
            a = syn.x[:, field] if part == "x" else getattr(where[part], field)
            rec.setdefault(name, []).append(np.array(a, np.int64))
    if (done + 1) % record_every == 0:
        for name in BEFORE_RECORDS:
            part, field = STATE_RECORDS[name]
            rec.setdefault(name + "_before", []).append(np.array(getattr(where[part], field),
                                                                 np.int64))
