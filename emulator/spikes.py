"""The one spike generator shared by every backend (float reference, integer emulator, Lava).

``SpikeSource`` draws Poisson (Bernoulli-per-bin) input spikes and teacher spikes from the
counter RNG of :mod:`fixedpoint.rng`, so that the bits depend only on
``(seed, stream, global step k, trial id, unit id)``: any chunking in time and any split of
the trials into batches yields bit-identical spikes.

* input spike of trial t, afferent i, step k:
  ``rng.bernoulli(r_i*dt, seed, STREAM_INPUT, k, t<<32 | i)``
* realizable teacher (docs/model.md#teacher): float64 traces a_m, a_s start at 0 and are updated
  with the bin-k spike included at step k (docs/model.md#usp-kernel, continuous inputs),
  x_k = (a_m - a_s) * usp_scale, V*_k = Σ_i f(w*_i) x_{i,k} summed in ascending i (fixed order,
  no BLAS), y_k = ``rng.bernoulli(phi_max*sigma(V*_k)*dt, seed, STREAM_TEACHER, k, t<<32 | j)``
* Poisson teacher (Figs 4, 5, 7): ``rng.bernoulli(teacher_rate*dt, seed, STREAM_TEACHER, k, t<<32 | j)``
* recorded inputs (``task.inputs``, :mod:`emulator.recorded`): the recording's step-k row for
  every trial instead of the Poisson draws; the teacher is drawn from them as above.  The
  compiled loops that draw their own spikes cannot play a recording: drivers take
  :meth:`SpikeSource.next` when :attr:`SpikeSource.recorded` (same bits either way for
  drawn spikes).
* recorded teacher (``task.teacher_spikes``): the recording's step-k row (one column per
  output neuron) for every trial instead of a teacher drawn from weights or a rate.
"""
from __future__ import annotations

import collections

import numba
import numpy as np
from scipy.special import expit

from fixedpoint import rng
from fixedpoint.jit import random_bits_from_prefix, stream_prefix

from .task import Task

__all__ = ["SpikeSource", "SpikeKernelArgs", "sigma"]

#: 2**53 as float64: ``rng.bernoulli_threshold`` compares 53-bit draws with floor(p * 2**53).
_TWO53 = 9007199254740992.0
_S11 = np.uint64(11)


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


@numba.njit(cache=True, inline="always")
def expit_one(z):
    """``scipy.special.expit`` of one float64, bit for bit: scipy computes 1 / (1 + exp(-z))
    with the C library's ``exp``, which is also what numba calls (numpy's own SIMD ``exp``
    differs in the last bit, so do not vectorize this; ``tests/emulator/test_fused_kernel.py``
    ``test_scalar_twins_match_scipy_and_rng``)."""
    return 1.0 / (1.0 + np.exp(-z))


@numba.njit(cache=True, inline="always")
def threshold_one(p):
    """``rng.bernoulli_threshold(p)`` of one float64: floor(clip(p, 0, 1) * 2**53) as uint64."""
    if p < 0.0:
        p = 0.0
    elif p > 1.0:
        p = 1.0
    return np.uint64(np.floor(p * _TWO53))


@numba.njit(cache=True, inline="always")
def spikes_step(sp, b, tb, p_in, p_teach, spk, xf, y):
    """One step of one trial of :meth:`SpikeSource.next`, in place, without (T, B, N) arrays.

    ``sp`` is :class:`SpikeKernelArgs`; ``tb = trial << 32``; ``p_in``, ``p_teach`` the
    step's stream prefixes (``fixedpoint.jit.stream_prefix(seed, STREAM_INPUT/TEACHER, k)``).
    Writes the input spikes ``spk`` (N,) uint8 and teacher spikes ``y`` (M,) uint8, updates the
    float64 traces ``sp.am[b]``, ``sp.as_[b]`` exactly as :func:`_traces`, and uses ``xf`` (N,)
    as scratch for the USPs.  The teacher potential is summed in ascending i from 0.0, as
    :meth:`SpikeSource.teacher_potential` (that order is part of the bit contract).
    """
    n = spk.shape[0]
    am = sp.am[b]
    as_ = sp.as_[b]
    dm = sp.decay_m
    ds = sp.decay_s
    scale = sp.usp_scale
    for i in range(n):
        s = 1 if (random_bits_from_prefix(p_in, tb | i) >> _S11) < sp.thr_in[i] else 0
        spk[i] = s
        xi = float(s)
        am[i] = dm * am[i] + xi
        as_[i] = ds * as_[i] + xi
        xf[i] = (am[i] - as_[i]) * scale
    for j in range(y.shape[0]):
        if sp.realizable:
            fw = sp.fw[b, j]
            v = 0.0
            for i in range(n):
                v += fw[i] * xf[i]
            prob = sp.phi_max * expit_one(sp.beta * (v - sp.theta)) * sp.dt
            thr = threshold_one(prob)
        else:
            thr = sp.thr_teach[j]
        y[j] = 1 if (random_bits_from_prefix(p_teach, tb | j) >> _S11) < thr else 0


@numba.njit(cache=True, inline="always")
def spike_prefixes(seed, k0, T):
    """(T,) stream keys of the input and of the teacher draws of steps k0 .. k0 + T - 1, for
    :func:`spikes_step` in the compiled loops that draw their own spikes."""
    p_in = np.empty(T, np.uint64)
    p_teach = np.empty(T, np.uint64)
    for t in range(T):
        p_in[t] = stream_prefix(seed, np.uint64(rng.STREAM_INPUT), k0 + t)
        p_teach[t] = stream_prefix(seed, np.uint64(rng.STREAM_TEACHER), k0 + t)
    return p_in, p_teach


@numba.njit(cache=True)
def spikes_chunk(sp, trials, seed, k0, X, Y):
    """X (T, B, N), Y (T, B, M) of steps k0.. by :func:`spikes_step` (tests; the fused
    datapath kernel calls :func:`spikes_step` itself)."""
    T, B, N = X.shape
    xf = np.empty(N)
    for t in range(T):
        p_in = stream_prefix(seed, np.uint64(rng.STREAM_INPUT), k0 + t)
        p_teach = stream_prefix(seed, np.uint64(rng.STREAM_TEACHER), k0 + t)
        for b in range(B):
            spikes_step(sp, b, np.int64(trials[b]) << 32, p_in, p_teach, X[t, b], xf, Y[t, b])


def sigma(V, params):
    """Normalised transfer function σ(V) = 1/(1+exp(-β(V-θ))) (docs/model.md#transfer-function); elementwise, overflow-safe."""
    return expit(params.beta * (np.asarray(V, dtype=np.float64) - params.theta))


#: Everything :func:`spikes_step` needs, bound to a SpikeSource's trace arrays (updated in place).
#: ``realizable`` 1: teacher from ``fw`` (B, M, N) = f(w*); 0: Poisson teacher, ``thr_teach`` (M,).
SpikeKernelArgs = collections.namedtuple(
    "SpikeKernelArgs", ("thr_in", "thr_teach", "fw", "am", "as_", "decay_m", "decay_s",
                        "usp_scale", "beta", "theta", "phi_max", "dt", "realizable"))


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
        if task.poisson_teacher or task.teacher_spikes is not None:
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
        if self.task.inputs is not None:
            # a writeable copy: a read-only array (broadcast_to's view, one trial) would make
            # numba compile every kernel once more for its 'readonly' type
            X = np.broadcast_to(self.task.inputs.chunk(self.k, n)[:, None, :], (n, B, N)).copy()
        else:
            X = rng.bernoulli_steps(self.task.rates * p.dt, self.seed, rng.STREAM_INPUT, self.k,
                                    n, self._idx_in)
        x = np.empty(X.shape)
        _traces(X, self._am, self._as, p.decay_m, p.decay_s, p.usp_scale, x, rows, am_rows, as_rows)
        if self.task.teacher_spikes is not None:
            Y = np.broadcast_to(self.task.teacher_spikes.chunk(self.k, n)[:, None, :],
                                (n, B, M)).copy()
        elif self.task.poisson_teacher:
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

    @property
    def recorded(self) -> bool:
        """True when the inputs or the teacher come from a recording (use :meth:`next`, not
        the compiled loops that draw their own spikes)."""
        return self.task.inputs is not None or self.task.teacher_spikes is not None

    def kernel_args(self) -> SpikeKernelArgs:
        """The arguments of :func:`spikes_step` for the current state: compiled loops that draw
        the spikes themselves (``emulator.kernels.run_fused``) update this source's traces in
        place and must then call :meth:`advance`."""
        if self.recorded:
            raise ValueError("a recording cannot be drawn inside a compiled loop: take "
                             "next() (fused=False)")
        p, M, B = self.params, self.task.M, self.trials.size
        if self.task.poisson_teacher:
            thr_teach = rng.bernoulli_threshold(np.broadcast_to(self.task.teacher_rate * p.dt, (M,)))
            fw = np.zeros((B, M, 0))
        else:
            thr_teach = np.zeros(M, np.uint64)
            fw = self._fw_target
        return SpikeKernelArgs(
            np.ascontiguousarray(rng.bernoulli_threshold(self.task.rates * p.dt)),
            np.ascontiguousarray(thr_teach, np.uint64), fw, self._am, self._as,
            float(p.decay_m), float(p.decay_s), float(p.usp_scale), float(p.beta),
            float(p.theta), float(p.phi_max), float(p.dt), not self.task.poisson_teacher)

    def advance(self, n_steps: int) -> None:
        """Move the step counter on by ``n_steps`` drawn outside :meth:`next`."""
        self.k += int(n_steps)

    def teacher_potential(self, x: np.ndarray) -> np.ndarray:
        """V* (n, B, M) = Σ_i f(w*_i) x_i with ascending-i accumulation (order fixed, no BLAS)."""
        fw = self._fw_target                                  # (B, M, N)
        n, B, N = x.shape
        acc = np.zeros((n, B, fw.shape[1]))
        for i in range(N):
            acc += fw[None, :, :, i] * x[:, :, None, i]
        return acc
