"""The one spike generator shared by every backend (float reference, integer emulator, Lava).

``SpikeSource`` draws Poisson (Bernoulli-per-bin) input spikes and teacher spikes from the
counter RNG of :mod:`fixedpoint.rng`, so that the bits depend only on
``(seed, stream, global step k, trial id, unit id)``: any chunking in time and any split of
the trials into batches yields bit-identical spikes.

* input spike of trial t, afferent i, step k:
  ``rng.bernoulli(r_i*dt, seed, STREAM_INPUT, k, t<<32 | i)``
* realizable teacher (SPEC §1.5): float64 traces a_m, a_s start at 0 and are updated with the
  bin-k spike included at step k (SPEC §1.3, continuous-input variant),
  x_k = (a_m - a_s) * usp_scale, V*_k = Σ_i f(w*_i) x_{i,k} summed in ascending i (fixed order,
  no BLAS), y_k = ``rng.bernoulli(phi_max*sigma(V*_k)*dt, seed, STREAM_TEACHER, k, t<<32 | j)``
* Poisson teacher (Figs 4, 5, 7): ``rng.bernoulli(teacher_rate*dt, seed, STREAM_TEACHER, k, t<<32 | j)``
"""
from __future__ import annotations

import numba
import numpy as np
from scipy.special import expit

from fixedpoint import rng

from .task import Task

__all__ = ["SpikeSource", "sigma"]


@numba.njit(cache=True, nogil=True)
def _traces(X, am, as_, dm, ds, scale, x, rows, am_rows, as_rows):
    """In place over the chunk: a_m = dm*a_m + X_k, a_s = ds*a_s + X_k, x_k = (a_m - a_s)*scale;
    the traces after the chunk steps listed in ``rows`` (ascending) are copied to am_rows, as_rows."""
    n, B, N = X.shape
    r = 0
    for t in range(n):
        for b in range(B):
            for i in range(N):
                xi = float(X[t, b, i])
                am[b, i] = dm * am[b, i] + xi
                as_[b, i] = ds * as_[b, i] + xi
                x[t, b, i] = (am[b, i] - as_[b, i]) * scale
        if r < rows.size and rows[r] == t:
            am_rows[r] = am
            as_rows[r] = as_
            r += 1


def sigma(V, params):
    """Normalised transfer function σ(V) = 1/(1+exp(-β(V-θ))) (SPEC §1.2); elementwise, overflow-safe."""
    return expit(params.beta * (np.asarray(V, dtype=np.float64) - params.theta))


class SpikeSource:
    """Stateful, chunk- and batch-invariant source of input and teacher spikes.

    Parameters
    ----------
    task : Task
    seed : int
    trials : global trial ids (default ``arange(task.n_trials)``); task weights are indexed by them.

    ``next(n_steps)`` returns ``X`` (n_steps, B, N) uint8 input spikes and ``Y`` (n_steps, B, M)
    uint8 teacher spikes for global steps k, k+1, ..., k+n_steps-1 and advances k.
    ``next(n_steps, return_usp=True)`` additionally returns the float64 USPs ``x`` (n_steps, B, N)
    (the same traces the teacher uses; x_k includes the bin-k spike).
    ``next(n_steps, trace_steps=rows)`` (rows: ascending chunk-local step indices) appends the
    traces a_m, a_s (len(rows), B, N) after those steps to the returned tuple.
    """

    def __init__(self, task: Task, seed: int, trials: np.ndarray | None = None):
        if not isinstance(task, Task):
            raise ValueError(f"task must be a Task (got {type(task).__name__})")
        self.task = task
        self.params = task.params
        self.seed = int(seed)
        trials = np.arange(task.n_trials) if trials is None else np.asarray(trials, dtype=np.int64).ravel()
        if trials.size < 1:
            raise ValueError("trials must contain at least one trial id")
        if trials.min() < 0 or trials.max() >= task.n_trials:
            raise ValueError(f"trials must lie in [0, {task.n_trials}) (got {trials.min()}..{trials.max()})")
        self.trials = trials
        B, N, M = trials.size, task.N, task.M
        self.k = 0
        self._idx_in = rng.trial_unit_index(trials, np.arange(N))
        self._idx_out = rng.trial_unit_index(trials, np.arange(M))
        self._am = np.zeros((B, N))
        self._as = np.zeros((B, N))
        if task.poisson_teacher:
            self._fw_target = None
        else:
            self._fw_target = np.ascontiguousarray(task.f.f(task.w_target[trials]), dtype=np.float64)

    @property
    def a_m(self) -> np.ndarray:
        """Current membrane trace a^m (B, N) (count units; after the last generated step)."""
        return self._am.copy()

    @property
    def a_s(self) -> np.ndarray:
        """Current synaptic trace a^s (B, N)."""
        return self._as.copy()

    def next(self, n_steps: int, return_usp: bool = False, trace_steps=None):
        n = int(n_steps)
        if n < 0:
            raise ValueError(f"n_steps must be >= 0 (got n_steps={n_steps!r})")
        p = self.params
        B, N, M = self.trials.size, self.task.N, self.task.M
        rows = np.zeros(0, np.int64) if trace_steps is None else np.asarray(trace_steps, np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= n or np.any(np.diff(rows) <= 0)):
            raise ValueError(f"trace_steps must be ascending indices in [0, {n})")
        am_rows, as_rows = np.empty((rows.size, B, N)), np.empty((rows.size, B, N))
        traces = () if trace_steps is None else (am_rows, as_rows)
        if n == 0:
            X, Y = np.zeros((0, B, N), np.uint8), np.zeros((0, B, M), np.uint8)
            return ((X, Y, np.zeros((0, B, N))) if return_usp else (X, Y)) + traces
        X = rng.bernoulli_steps(self.task.rates * p.dt, self.seed, rng.STREAM_INPUT, self.k, n,
                                self._idx_in)
        x = np.empty(X.shape)
        _traces(X, self._am, self._as, p.decay_m, p.decay_s, p.usp_scale, x, rows, am_rows, as_rows)
        if self.task.poisson_teacher:
            Y = rng.bernoulli_steps(np.broadcast_to(self.task.teacher_rate * p.dt, (self.task.M,)),
                                    self.seed, rng.STREAM_TEACHER, self.k, n, self._idx_out)
        else:
            Vt = self.teacher_potential(x)
            prob = p.phi_max * sigma(Vt, p) * p.dt
            Y = rng.bernoulli_steps(prob, self.seed, rng.STREAM_TEACHER, self.k, n, self._idx_out)
        self.k += n
        if return_usp:
            return (X, Y, x) + traces
        return (X, Y) + traces

    def teacher_potential(self, x: np.ndarray) -> np.ndarray:
        """V* (n, B, M) = Σ_i f(w*_i) x_i with ascending-i accumulation (order fixed, no BLAS)."""
        fw = self._fw_target                                  # (B, M, N)
        n, B, N = x.shape
        acc = np.zeros((n, B, fw.shape[1]))
        for i in range(N):
            acc += fw[None, :, :, i] * x[:, :, None, i]
        return acc
