"""float64 runs of the approximate rule behind :func:`emulator.run` (``kind: float64``).

The arithmetic is the float reference's (:mod:`emulator.reference`, rule ``'approx'``, gamma_s
exact every step), run by its compiled loop :func:`emulator.float_kernel.run_fused`; this module
only drives it over time chunks of the shared spikes and collects the same variables as the
integer emulator records, in physical units.  Memory is bounded by one chunk of spikes plus the
output records, whatever ``record_every`` is.
"""
from __future__ import annotations

import numpy as np

from emulator.drive import drive, record_offsets, record_rows
from emulator.hwconfig import HwConfig
from emulator.float_kernel import (AFFERENT_VARS, EXTREME_VARS, NEURON_VARS, new_extremes,
                                   run_chunk, run_fused)
from emulator.reference import Rule
from emulator.result import RunResult
from emulator.spikes import SpikeSource
from emulator.task import Task
from emulator.threads import default_parallel

__all__ = ["run_float"]


def run_float(cfg: HwConfig, task: Task, steps: int, seed: int, *, eta: float, record=(),
              record_every: int = 0, chunk_steps: int = 4000, trials=None, progress=None,
              parallel: bool | None = None):
    """Float64 counterpart of the integer run; same arguments and result type.

    ``record[name]`` (n_records, B, ...) holds, for every global step k with
    ``(k + 1) % record_every == 0``: the weights after step k's update, the USP x_k [mV] and
    traces a_m, a_s of step k, and V [mV], sigma, e, gamma_s, post of step k computed at the
    weights before its update (see :meth:`emulator.reference.Rule.step_variables`).
    The spikes are drawn inside the compiled loop (:func:`emulator.float_kernel.run_fused`), a
    recording's (``task.inputs``) come from :meth:`SpikeSource.next`; ``parallel`` runs blocks of trials on threads (default: several trials in the main
    process).  Every choice gives the same bits.  ``extremes`` holds every variable's running
    minimum and maximum over every step (gamma_s and post included: the approximate rule
    computes them each step).
    Raises ValueError for parametrizations without a compiled form.
    """
    trials = np.arange(task.n_trials) if trials is None else np.asarray(trials, np.int64)
    rule = Rule("approx", task.rates, task.params, task.f, eta)
    args = rule.kernel_args()
    if args is None:
        raise ValueError(f"float64 runs support Identity, Attenuation and Sinh parametrizations "
                         f"(got {type(task.f).__name__})")
    src = SpikeSource(task, seed, trials)
    W = np.array(task.w_init[trials], dtype=np.float64)
    B, M, N = W.shape
    every = int(record_every) if record else 0
    n_rec = record_rows(0, steps, every)[1]
    # Outputs are allocated once; each chunk writes only its own rows into them.
    want = set(record)
    rec_w = np.empty((n_rec if "weights" in want else 0, B, M, N))
    rec_neuron = np.empty((len(NEURON_VARS), n_rec if want & set(NEURON_VARS) else 0, B, M))
    rec_aff = np.empty((len(AFFERENT_VARS), n_rec if want & set(AFFERENT_VARS) else 0, B, N))
    ext = new_extremes(B)
    teach_spk = np.zeros((B, M), np.int64)
    par = default_parallel(B) if parallel is None else bool(parallel)
    engine = _FloatEngine(W, src, args, every, rec_w, rec_neuron, rec_aff, ext, teach_spk, par)
    drive(engine, src, steps, chunk_steps, record_every=every, teach=teach_spk,
          progress=progress)
    columns = dict(zip(NEURON_VARS, rec_neuron))
    columns.update(zip(AFFERENT_VARS, rec_aff), weights=rec_w)
    recorded = {name: columns[name] for name in record}
    t_rec = np.arange(1, n_rec + 1) * every * task.params.dt
    extremes = {name: tuple(np.where(ext[:, 0, q] <= ext[:, 1, q], ext[:, i, q], np.nan)
                            for i in (0, 1))
                for q, name in enumerate(EXTREME_VARS)}
    return RunResult(config_name=cfg.name, steps=steps, seed=seed, trials=trials,
                     w_final=W, w_int=None, counters={}, record=recorded,
                     record_t_s=t_rec, output_spikes=None, teacher_spikes=teach_spk,
                     extremes=extremes)


class _FloatEngine:
    """The compiled float64 loop's steps for :func:`emulator.drive.drive`: spikes drawn
    inside it, or a recording's from :meth:`SpikeSource.next` with the traces of every step
    (their records and extremes are taken here)."""

    def __init__(self, W, src, args, every, rec_w, rec_neuron, rec_aff, ext, teach, parallel):
        self.W, self.src, self.args, self.every = W, src, args, every
        self.rec_w, self.rec_neuron, self.rec_aff = rec_w, rec_neuron, rec_aff
        self.ext, self.teach, self.parallel = ext, teach, parallel

    def _records(self, r0, r1):
        """The chunk's rows of the three records (None where that record is not kept)."""
        return (self.rec_w[r0:r1] if self.rec_w.shape[0] else None,
                self.rec_neuron[:, r0:r1] if self.rec_neuron.shape[1] else None,
                self.rec_aff[:, r0:r1] if self.rec_aff.shape[1] else None)

    def fused(self, n, done, rows):
        rec_w, rec_neuron, rec_aff = self._records(*rows)
        run_fused(self.W, self.src, n, self.args, self.every, rec_w, rec_neuron, self.teach,
                  parallel=self.parallel, rec_aff=rec_aff, ext=self.ext)

    @staticmethod
    def spike_kwargs(n, done):
        return {"return_usp": True, "trace_steps": np.arange(n)}

    def chunk(self, spikes, done, rows):
        _, Y, x, a_m, a_s = spikes
        rec_w, rec_neuron, rec_aff = self._records(*rows)
        at = record_offsets(done, x.shape[0], self.every)
        ext = self.ext
        for name, a in (("trace_m", a_m), ("trace_s", a_s), ("usp", x)):
            if rec_aff is not None:
                rec_aff[AFFERENT_VARS.index(name)] = a[at]
            if name != "usp":                 # run_chunk counts the USPs' extremes
                q = EXTREME_VARS.index(name)
                np.minimum(ext[:, 0, q], a.min(axis=(0, 2)), out=ext[:, 0, q])
                np.maximum(ext[:, 1, q], a.max(axis=(0, 2)), out=ext[:, 1, q])
        run_chunk(self.W, x, Y.astype(np.float64), self.args, done, self.every, rec_w,
                  rec_neuron, ext=ext)
