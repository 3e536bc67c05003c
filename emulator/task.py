"""Teacher-student tasks and weight parametrizations (docs/model.md#teacher, #parametrization, #fig3f).

Array layout used throughout ``emulator``: weights ``(K, M, N)`` = (trials, output
neurons, afferents); per-step inputs ``(K, N)``; per-step outputs ``(K, M)``.
M output neurons of a trial share that trial's inputs; M = 1 is the paper's case.

Weights are stored in the *parametrization* coordinates ``w``; the somatic weight of
synapse i is ``f(w_i)`` and the membrane potential is ``V = Σ_i f(w_i) x_i``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fixedpoint import rng

from .params import NeuronParams, check_positive
from .rule_math import input_q

__all__ = [
    "Parametrization", "Identity", "Attenuation", "Sinh", "IDENTITY",
    "Task", "fig3_task", "group_rates_vector",
]


# ---------------------------------------------------------------------------- parametrizations
class Parametrization:
    """Component-wise, invertible, increasing map from weight ``w`` to somatic weight ``f(w)``.

    Subclasses implement ``f``, ``fprime`` (> 0 everywhere) and ``inverse``; all broadcast
    over arrays whose last axis is the afferent axis N.
    """

    is_identity = False

    def f(self, w):
        raise NotImplementedError

    def fprime(self, w):
        raise NotImplementedError

    def inverse(self, ws):
        raise NotImplementedError

    def check(self, n_afferents: int) -> None:
        """Raise ``ValueError`` if this parametrization does not fit ``n_afferents`` synapses."""


@dataclass(frozen=True)
class Identity(Parametrization):
    """Somatic parametrization f(w) = w (the paper's Fig 3 setting)."""

    is_identity = True

    def f(self, w):
        return w

    def fprime(self, w):
        return np.ones_like(np.asarray(w, dtype=np.float64))

    def inverse(self, ws):
        return ws


IDENTITY = Identity()


@dataclass(frozen=True, eq=False)
class Attenuation(Parametrization):
    """Dendritic parametrization with per-synapse linear attenuation f(w) = alpha_i w (docs/model.md#parametrization, Fig 4).

    ``alpha`` has shape ``(N,)`` with entries in (0, inf) (physically (0, 1], alpha = exp(-d/lambda)).
    """

    alpha: np.ndarray

    def __post_init__(self):
        a = np.array(self.alpha, dtype=np.float64, ndmin=1)
        if a.ndim != 1:
            raise ValueError(f"alpha must be a 1-D array of shape (N,) (got shape {a.shape})")
        if not np.all(np.isfinite(a)) or not np.all(a > 0):
            raise ValueError(f"alpha must be finite and > 0 (got min alpha={a.min()!r})")
        a.setflags(write=False)
        object.__setattr__(self, "alpha", a)

    def f(self, w):
        return self.alpha * w

    def fprime(self, w):
        return np.broadcast_to(self.alpha, np.shape(w)).astype(np.float64)

    def inverse(self, ws):
        return ws / self.alpha

    def check(self, n_afferents: int) -> None:
        if self.alpha.shape[0] not in (1, n_afferents):
            raise ValueError(
                f"alpha must have shape (N,) = ({n_afferents},) (got shape {self.alpha.shape})")


@dataclass(frozen=True)
class Sinh(Parametrization):
    """Nonlinear parametrization f(w) = w_scale * sinh(w / w_scale) (f' = cosh > 0, f ≈ id for |w| << w_scale).

    A 'supralinear spine' model: large weights grow faster in the somatic coordinate.
    """

    w_scale: float = 0.01

    def __post_init__(self):
        check_positive("w_scale", self.w_scale)

    def f(self, w):
        return self.w_scale * np.sinh(np.asarray(w, dtype=np.float64) / self.w_scale)

    def fprime(self, w):
        return np.cosh(np.asarray(w, dtype=np.float64) / self.w_scale)

    def inverse(self, ws):
        return self.w_scale * np.arcsinh(np.asarray(ws, dtype=np.float64) / self.w_scale)


# ---------------------------------------------------------------------------- task
def _check_weights(name: str, w, shape=None) -> np.ndarray:
    a = np.array(w, dtype=np.float64)
    if a.ndim != 3:
        raise ValueError(f"{name} must have shape (K, M, N) (got shape {a.shape})")
    if shape is not None and a.shape != shape:
        raise ValueError(f"{name} must have shape {shape} like w_init (got shape {a.shape})")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"{name} must have K >= 1 trials and M >= 1 outputs (got shape {a.shape})")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite (got {np.count_nonzero(~np.isfinite(a))} non-finite entries)")
    return a


@dataclass(eq=False)
class Task:
    """A batch of K independent teacher-student trials sharing input rates and neuron constants.

    Fields
    ------
    rates : (N,) input rates [Hz], each >= 0 and rate*dt <= 1.
    w_init : (K, M, N) initial student weights (parametrization coordinates).
    w_target : (K, M, N) teacher weights (realizable teacher, docs/model.md#teacher) or None.
    teacher_rate : homogeneous Poisson teacher rate [Hz] (scalar or (M,)), used instead of the
        realizable teacher when not None (Figs 4, 5, 7).  ``w_target`` may then still be given
        (it is only used for the metrics).
    params : NeuronParams.
    f : Parametrization (identity by default); the teacher uses the same f: V* = Σ f(w*_i) x_i.
    inputs : :class:`emulator.recorded.RecordedSpikes` played as the input spikes of every
        trial instead of the Poisson draws at ``rates`` (``rates`` then says what the
        design assumes: by default the recording's mean rates), or None.
    teacher_spikes : :class:`emulator.recorded.RecordedSpikes` with one column per output
        neuron: the teacher's recorded spikes, played to every trial, instead of a teacher
        drawn from ``w_target`` or ``teacher_rate`` (the error is then measured against these
        spikes on the recording, :func:`emulator.metrics.evaluator`), or None.
    test_bin_steps : with ``teacher_spikes``, the bin in steps over which the student's
        expected and the teacher's recorded counts are compared (default 2000: 1 s).
    test_samples, test_steps : the test set the metrics use (docs/model.md#metrics): that many
        USP samples, each after a Poisson train of that many steps at ``rates``; None: 50
        samples of 500 steps (250 ms), the paper's.
    w_range : the largest |w| the weights are expected to reach while learning, as the user
        states it (parametrization coordinates), or None (unknown).  Automatic
        discretization fits the chip's weight and V ranges to ``w_init`` and this range;
        it never reads ``w_target``, which a user deploying for real does not have.
    """

    rates: np.ndarray
    w_init: np.ndarray
    w_target: np.ndarray | None = None
    teacher_rate: float | np.ndarray | None = None
    params: NeuronParams = field(default_factory=NeuronParams)
    f: Parametrization = field(default_factory=Identity)
    inputs: object = None
    w_range: float | None = None
    teacher_spikes: object = None
    test_bin_steps: int = 2000
    test_samples: int | None = None
    test_steps: int | None = None

    def __post_init__(self):
        if not isinstance(self.params, NeuronParams):
            raise ValueError(f"params must be a NeuronParams (got {type(self.params).__name__})")
        r = np.array(self.rates, dtype=np.float64, ndmin=1)
        if r.ndim != 1:
            raise ValueError(f"rates must be a 1-D array of shape (N,) (got shape {r.shape})")
        if r.shape[0] < 1:
            raise ValueError(f"N must be >= 1 (got N={r.shape[0]})")
        if not np.all(np.isfinite(r)):
            raise ValueError("rates must be finite (got non-finite rate)")
        if np.any(r < 0):
            raise ValueError(f"rates must be >= 0 Hz (got min rate={r.min()!r})")
        if np.any(r * self.params.dt > 1.0):
            raise ValueError(
                f"rates must be <= 1/dt = {1.0 / self.params.dt!r} Hz (got max rate={r.max()!r})")
        self.rates = r
        self.w_init = _check_weights("w_init", self.w_init)
        if self.w_init.shape[2] != r.shape[0]:
            raise ValueError(
                f"w_init must have N = len(rates) = {r.shape[0]} afferents (got shape {self.w_init.shape})")
        if self.w_target is not None:
            self.w_target = _check_weights("w_target", self.w_target, self.w_init.shape)
        if self.teacher_rate is not None:
            tr = np.array(self.teacher_rate, dtype=np.float64)
            if not np.all(np.isfinite(tr)) or np.any(tr < 0):
                raise ValueError(f"teacher_rate must be finite and >= 0 Hz (got teacher_rate={self.teacher_rate!r})")
            if np.any(tr * self.params.dt > 1.0):
                raise ValueError(f"teacher_rate must be <= 1/dt Hz (got teacher_rate={self.teacher_rate!r})")
            if tr.ndim > 1 or (tr.ndim == 1 and tr.shape[0] != self.w_init.shape[1]):
                raise ValueError(f"teacher_rate must be a scalar or have shape (M,) (got shape {tr.shape})")
            self.teacher_rate = tr
        elif self.w_target is None and self.teacher_spikes is None:
            raise ValueError("w_target must be given when teacher_rate is None (no teacher defined)")
        if self.teacher_spikes is not None:
            from .recorded import RecordedSpikes
            if not isinstance(self.teacher_spikes, RecordedSpikes):
                raise ValueError("teacher_spikes must be RecordedSpikes (got "
                                 f"{type(self.teacher_spikes).__name__})")
            if self.teacher_rate is not None:
                raise ValueError("give teacher_spikes or teacher_rate, not both")
            if self.teacher_spikes.N != self.w_init.shape[1]:
                raise ValueError(f"the teacher recording has {self.teacher_spikes.N} output "
                                 f"neurons, the task M = {self.w_init.shape[1]}")
            if abs(self.teacher_spikes.dt / self.params.dt - 1.0) > 1e-9:
                raise ValueError(f"the teacher recording's dt {self.teacher_spikes.dt:g} s "
                                 f"differs from the neuron's dt {self.params.dt:g} s")
        for name in ("test_samples", "test_steps", "test_bin_steps"):
            v = getattr(self, name)
            if v is not None and (int(v) != v or v < 1):
                raise ValueError(f"{name} must be an integer >= 1 (got {name}={v!r})")
        if self.w_range is not None:
            check_positive("w_range", self.w_range)
            self.w_range = float(self.w_range)
        if not isinstance(self.f, Parametrization):
            raise ValueError(f"f must be a Parametrization (got {type(self.f).__name__})")
        self.f.check(r.shape[0])
        if self.inputs is not None:
            from .recorded import RecordedSpikes
            if not isinstance(self.inputs, RecordedSpikes):
                raise ValueError(f"inputs must be RecordedSpikes (got {type(self.inputs).__name__})")
            if self.inputs.N != r.shape[0]:
                raise ValueError(f"the recording has {self.inputs.N} afferents, the task "
                                 f"{r.shape[0]}")
            if abs(self.inputs.dt / self.params.dt - 1.0) > 1e-9:
                raise ValueError(f"the recording's dt {self.inputs.dt:g} s differs from the "
                                 f"neuron's dt {self.params.dt:g} s")

    @property
    def n_trials(self) -> int:
        return self.w_init.shape[0]

    @property
    def M(self) -> int:
        return self.w_init.shape[1]

    @property
    def N(self) -> int:
        return self.w_init.shape[2]

    @property
    def poisson_teacher(self) -> bool:
        return self.teacher_rate is not None

    @property
    def q(self) -> float:
        """q = c_eps Σ r_i (docs/model.md#membrane-potential-statistics; 78.0 for the Fig 3 task)."""
        return input_q(self.rates, self.params.c_eps)


def group_rates_vector(N: int, group_rates) -> np.ndarray:
    """Rates (N,) for consecutive, (near-)equal groups: afferent i is in group floor(i*G/N)."""
    g = np.asarray(group_rates, dtype=np.float64).ravel()
    if g.size < 1:
        raise ValueError("group_rates must contain at least one rate")
    idx = (np.arange(N) * g.size) // N
    return g[idx]


def fig3_task(n_trials: int = 16, N: int = 100, M: int = 1, group_rates=(10.0, 50.0), seed: int = 0,
              w_scale: float | None = None, params: NeuronParams | None = None,
              f: Parametrization | None = None, teacher_rate=None) -> Task:
    """The Fig 3 teacher-student task (docs/model.md#fig3f): N afferents in groups of equal size with their
    own rates (i < N/2 at 10 Hz, i >= N/2 at 50 Hz by default), w_init, w* ~ U(-1, 1) * w_scale
    i.i.d. per trial (w_scale = 1/N by default, as in the paper).  The expected weight range
    ``w_range`` is ``w_scale``: the bound of the teacher's distribution, known before learning.

    Weights come from the counter RNG ``rng.uniform(seed, STREAM_INIT, step, trial<<32 | (j*N+i))``
    with step 0 for w_init and step 1 for w_target, so trial t gets the same weights whatever
    ``n_trials`` is.
    """
    if int(N) != N or N < 1:
        raise ValueError(f"N must be >= 1 (got N={N!r})")
    if int(M) != M or M < 1:
        raise ValueError(f"M must be >= 1 (got M={M!r})")
    if int(n_trials) != n_trials or n_trials < 1:
        raise ValueError(f"n_trials must be >= 1 (got n_trials={n_trials!r})")
    N, M, n_trials = int(N), int(M), int(n_trials)
    if w_scale is None:
        w_scale = 1.0 / N
    check_positive("w_scale", w_scale)
    params = NeuronParams() if params is None else params
    rates = group_rates_vector(N, group_rates)
    idx = rng.trial_unit_index(np.arange(n_trials), np.arange(M * N))
    w0 = (2.0 * rng.uniform(seed, rng.STREAM_INIT, 0, idx) - 1.0) * w_scale
    ws = (2.0 * rng.uniform(seed, rng.STREAM_INIT, 1, idx) - 1.0) * w_scale
    return Task(rates=rates, w_init=w0.reshape(n_trials, M, N), w_target=ws.reshape(n_trials, M, N),
                teacher_rate=teacher_rate, params=params, f=IDENTITY if f is None else f,
                w_range=w_scale)
