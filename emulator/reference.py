"""Float64 reference model of natural-gradient learning (Kreutzer, Petrovici & Senn, eLife 2022).

Everything is vectorised over K trials x M output neurons x N afferents:
weights ``W`` (K, M, N) in parametrization coordinates w (somatic weight f(w)), current USPs
``X`` (K, N), teacher spike counts ``y`` (K, M), input rates ``r`` (N,).

Learning-rate convention ("code units", docs/model.md#learning-rate-units)
---------------------------------------------------------------------------
All update functions use the error factor of the authors' Fig 3 code, i.e. φ'/φ = β(1-σ) is
replaced by (1-σ) -- the factor β is absorbed into η:

    Euclid  (Eq 10):  Δw = η (1-σ) e f'(w) x
    natural (Eq 13):  Δw = η γ_s (1-σ) e (1/f'(w)) [c_ε x/r - γ_u + γ_w f(w)]
    approx  (Eq 114): Δw = η γ_s (1-σ) e (1/f'(w)) [c_ε x/r - c_ε c_u + c_w V f(w)]

with e = y - φ_max σ(V) dt (teacher count in the bin minus expected student count) and one update
per Euler step (no extra factor dt: e already is [Y* - φ] dt).  Hence
``η_code = β η_paper`` (:func:`eta_from_paper`); :data:`ETA_CODE` holds the Fig 3F rates of the
original code, which reproduce the Fig 3F learning curves (docs/model.md#fig3f).  Figs 4/5/7 quote paper units (β
included): convert them with :func:`eta_from_paper`.

Coefficients (docs/model.md#coefficients) are evaluated exactly every step from the current
somatic weights (m = Σ f(w_i) r_i, v = Σ f(w_i)² r_i / c_ε with the *exact* continuous
c_ε = 1/∫ε², i.e. 38.4615 instead of the original scripts' rounded 38.46) -- no lookup table;
the approximated rule uses γ_w = c_w V_k recomputed every step (docs/spec_drift.md lists both
choices).

Step ordering (docs/model.md#step-order): traces take the bin-k spikes -> x_k; V_k = Σ f(w_k) x_k; teacher y_k;
coefficients from w_k; w_{k+1} = w_k + Δw(x_k, V_k, y_k, w_k).  Inputs are continuous Poisson
trains (never reset, docs/spec_drift.md#continuous-inputs), learning happens in every bin.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from .metrics import kl_cost, rate_rmse_hz, test_set, weight_distance
from .params import NeuronParams, check_finite
# the Gaussian moments, the G matrix and the coefficients live in emulator.rule_math (shared
# with the integer backends, the experiments and the analysis); re-exported from here
from .rule_math import (approx_terms, coefficients, g_matrix,  # noqa: F401
                        g_matrix_scalar, gauss_moments, homosynaptic_factor, input_q,
                        membrane_stats, moments, moments_scalar, natural_terms, rule_bracket,
                        sig_pair)

from .spikes import SpikeSource
from .task import IDENTITY, Parametrization, Task

__all__ = [
    "ETA_CODE", "ETA_CODE_SCALED", "RULES", "eta_from_paper", "eta_to_paper",
    "gauss_moments", "coefficients", "natural_gammas",
    "delta_euclid", "delta_natural", "delta_approx", "SimResult", "simulate",
    "Rule", "RULE_CODE", "NEURON_VARS", "AFFERENT_VARS", "EXTREME_VARS", "new_extremes", "moments", "moments_scalar", "sig_pair", "g_matrix",
    "g_matrix_scalar", "compiled_parametrization", "run_chunk", "run_fused",
]

DEFAULT_PARAMS = NeuronParams()

#: Fig 3F learning rates of the original code (code units, β omitted), docs/model.md#constants.
ETA_CODE = {"euclid": 4.5e-7, "natural": 6e-4, "approx": 5.5e-4}
#: The ×4 rates of the validated scaled-down Fig 3F test (docs/model.md#fig3f).
ETA_CODE_SCALED = {k: 4.0 * v for k, v in ETA_CODE.items()}
RULES = ("euclid", "natural", "approx")


def eta_from_paper(eta_paper, params: NeuronParams = DEFAULT_PARAMS):
    """Convert a paper-unit learning rate (φ'/φ = β(1-σ), β included) to code units: η β."""
    return eta_paper * params.beta


def eta_to_paper(eta_code, params: NeuronParams = DEFAULT_PARAMS):
    """Inverse of :func:`eta_from_paper`: η_paper = η_code / β."""
    return eta_code / params.beta


# =============================================================================== update rules
class Rule:
    """Precomputed per-task constants and the per-step update of one rule (no input checks).

    ``rule(W, x, y)`` returns ΔW (K, M, N) for weights W (K, M, N), USPs x (K, N) [mV] and
    teacher counts y (K, M); :meth:`step_variables` gives the per-neuron values of that step;
    :meth:`kernel_args` the constants of the compiled twin :func:`run_chunk`.
    """

    def __init__(self, rule: str, rates, params: NeuronParams, f: Parametrization, eta: float):
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES} (got rule={rule!r})")
        check_finite("eta", eta)
        if eta < 0:
            raise ValueError(f"eta must be >= 0 (got eta={float(eta)!r})")
        r = np.asarray(rates, dtype=np.float64)
        self.rule, self.params, self.f, self.eta = rule, params, f, float(eta)
        self.ident = bool(getattr(f, "is_identity", False))
        self.r = r
        self.ceps = params.c_eps
        self.ceps_over_r = homosynaptic_factor(r, self.ceps)    # x = 0 where r = 0
        self.q = input_q(r, self.ceps)
        self.phidt = params.phi_max * params.dt

    def error_factor(self, V, y):
        """(1-σ(V)) e with e = y - φ_max σ(V) dt."""
        p = self.params
        a = p.beta * (V - p.theta)
        return expit(-a) * (y - self.phidt * expit(a))

    def natural_gammas(self, ws, x, V):
        p = self.params
        m, v = membrane_stats(ws, self.r, self.ceps)
        if self.rule == "approx":
            I1, _, _ = moments(m, v, p, need=1)
            return (1.0 / I1,) + approx_terms(V, p)
        I1, c2, c3 = moments(m, v, p)
        g1, g2, g3, g4 = g_matrix(I1, c2, c3, m, v, self.q)
        S = x.sum(-1)[:, None]
        return (1.0 / I1,) + natural_terms(self.ceps, S, V, g1, g2, g3, g4)

    def step_variables(self, W, x, y) -> dict:
        """Per-neuron values of one step at weights W (K, M, N), USPs x (K, N), teacher y (K, M).

        Returns arrays (K, M): ``potential`` V [mV], ``sigma`` σ(V) [1], ``error``
        e = y - φ_max dt σ [spikes per bin], ``gamma_s`` = 1/I1 [mV² s] (I1 = E[φ'²/φ], exact,
        from the current somatic weights) and ``post`` = η γ_s (1-σ) e [code units], the factor
        that multiplies the bracket of the natural and approximate updates.  W are the weights
        *before* the update of the step.
        """
        p = self.params
        ws = W if self.ident else self.f.f(W)
        V = np.matmul(ws, x[:, :, None])[..., 0]
        s = expit(p.beta * (V - p.theta))
        e = y - self.phidt * s
        m, v = membrane_stats(ws, self.r, self.ceps)
        gs = 1.0 / moments(m, v, p, need=1)[0]
        return {"potential": V, "sigma": s, "error": e, "gamma_s": gs,
                "post": self.eta * gs * (1.0 - s) * e}

    def kernel_args(self) -> tuple | None:
        """Constant arguments of :func:`run_chunk` for this rule (None: the parametrization has
        no compiled form; use the numpy ``__call__`` per step)."""
        N = self.r.size
        fk = compiled_parametrization(self.f, N)
        if fk is None:
            return None
        p = self.params
        return (self.r, self.ceps_over_r, self.q, self.ceps, p.beta, p.theta, self.phidt,
                p.phi_max * p.beta ** 2, p.c_u, p.c_w, self.eta, RULE_CODE[self.rule]) + fk + (
                np.empty(N), np.empty(N))

    def __call__(self, W, x, y):
        ws = W if self.ident else self.f.f(W)
        V = np.matmul(ws, x[:, :, None])[..., 0]                       # (K, M)
        ef = self.error_factor(V, y)
        if self.rule == "euclid":
            dW = (self.eta * ef)[..., None] * x[:, None, :]
            return dW if self.ident else dW * self.f.fprime(W)
        gs, gu, gw = self.natural_gammas(ws, x, V)
        gu = np.broadcast_to(gu, V.shape)
        bracket = rule_bracket(self.ceps_over_r * x[:, None, :], gu[..., None], gw[..., None], ws)
        dW = (self.eta * gs * ef)[..., None] * bracket
        return dW if self.ident else dW / self.f.fprime(W)


def _prep(W, X, y, r, params, f):
    W = np.asarray(W, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    if not isinstance(params, NeuronParams):
        raise ValueError(f"params must be a NeuronParams (got {type(params).__name__})")
    if W.ndim != 3:
        raise ValueError(f"W must have shape (K, M, N) (got shape {W.shape})")
    K, M, N = W.shape
    if N < 1:
        raise ValueError(f"N must be >= 1 (got N={N})")
    if X.shape != (K, N):
        raise ValueError(f"X must have shape (K, N) = {(K, N)} (got shape {X.shape})")
    if y.shape != (K, M):
        raise ValueError(f"y must have shape (K, M) = {(K, M)} (got shape {y.shape})")
    if r.shape != (N,):
        raise ValueError(f"r must have shape (N,) = ({N},) (got shape {r.shape})")
    if not np.all(np.isfinite(W)):
        raise ValueError("W must be finite (got non-finite weights)")
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError(f"r must be finite and >= 0 Hz (got min rate={r.min()!r})")
    if not np.all(np.isfinite(X)):
        raise ValueError("X must be finite (got non-finite USP)")
    if not isinstance(f, Parametrization):
        raise ValueError(f"f must be a Parametrization (got {type(f).__name__})")
    f.check(N)
    return W, X, y, r


def delta_euclid(W, X, y, r, params: NeuronParams = DEFAULT_PARAMS, f: Parametrization = IDENTITY,
                 eta: float = 1.0):
    """One Euler step of the Euclidean rule (paper Eq. 10, code units): Δw = η (1-σ) e f'(w) x.

    W (K, M, N), X (K, N) current USPs, y (K, M) teacher spike counts, r (N,) rates [Hz]
    (unused; same signature as the other rules).  Returns ΔW (K, M, N).
    """
    W, X, y, r = _prep(W, X, y, r, params, f)
    return Rule("euclid", r, params, f, eta)(W, X, y)


def delta_natural(W, X, y, r, params: NeuronParams = DEFAULT_PARAMS, f: Parametrization = IDENTITY,
                  eta: float = 1.0):
    """One Euler step of the full natural-gradient rule (paper Eq. 13, docs/model.md#natural-rule, code units):
    Δw = η γ_s (1-σ) e (1/f'(w)) [c_ε x/r - γ_u + γ_w f(w)], exact coefficients at the current w.

    γ_u = -c_ε (c_ε S g1 + V g3), γ_w = c_ε S g2 + V g4, S = Σ_i x_i.  Synapses with r_i = 0 get no
    homosynaptic term.  Shapes as :func:`delta_euclid`.
    """
    W, X, y, r = _prep(W, X, y, r, params, f)
    return Rule("natural", r, params, f, eta)(W, X, y)


def delta_approx(W, X, y, r, params: NeuronParams = DEFAULT_PARAMS, f: Parametrization = IDENTITY,
                 eta: float = 1.0):
    """One Euler step of the approximated rule (paper Eq. 114, docs/model.md#approximate-rule, code units):
    Δw = η γ_s (1-σ) e (1/f'(w)) [c_ε x/r - c_ε c_u + c_w V f(w)], γ_s = 1/I1 exact, γ_w = c_w V_k
    of *this* step.  Shapes as :func:`delta_euclid`.
    """
    W, X, y, r = _prep(W, X, y, r, params, f)
    return Rule("approx", r, params, f, eta)(W, X, y)


def natural_gammas(W, X, r, params: NeuronParams = DEFAULT_PARAMS, f: Parametrization = IDENTITY,
                   rule: str = "natural"):
    """(γ_s, γ_u, γ_w, V), each (K, M), of the natural (or ``rule='approx'``) update at W, X."""
    W, X, _, r = _prep(W, X, np.zeros(np.shape(W)[:2]), r, params, f)
    k = Rule(rule, r, params, f, 0.0)
    ws = f.f(W)
    V = np.matmul(ws, X[:, :, None])[..., 0]
    gs, gu, gw = k.natural_gammas(ws, X, V)
    return gs, np.broadcast_to(gu, V.shape).copy(), np.broadcast_to(gw, V.shape).copy(), V


# =============================================================================== compiled step loop
RULE_CODE = {"euclid": 0, "natural": 1, "approx": 2}


# the compiled loop lives in emulator.float_kernel; re-exported from here
from .drive import drive, stops_at  # noqa: E402
from .float_kernel import (AFFERENT_VARS, EXTREME_VARS, NEURON_VARS,  # noqa: E402,F401
                           compiled_parametrization, new_extremes, run_chunk, run_fused)


# =============================================================================== simulation
@dataclass
class SimResult:
    """Output of :func:`simulate` (times in steps; multiply by ``dt`` for seconds).

    W : (K, M, N) final weights; t_record (R,), W_record (R, K, M, N);
    t_eval (E,), rmse (E, K, M) [Hz], kl (E, K, M) [per bin], wdist (E, K, M) -- None without w_target.
    """

    W: np.ndarray
    t_record: np.ndarray
    W_record: np.ndarray
    t_eval: np.ndarray
    rmse: np.ndarray | None
    kl: np.ndarray | None
    wdist: np.ndarray | None
    dt: float

    @property
    def t_eval_s(self) -> np.ndarray:
        return self.t_eval * self.dt

    @property
    def t_record_s(self) -> np.ndarray:
        return self.t_record * self.dt


def _event_steps(every, steps, name):
    if every is None:
        return np.array([0, steps], dtype=np.int64) if steps > 0 else np.array([0], dtype=np.int64)
    if int(every) != every or every < 1:
        raise ValueError(f"{name} must be an integer >= 1 (got {name}={every!r})")
    return np.arange(0, steps + 1, int(every), dtype=np.int64)


def simulate(task: Task, rule: str, eta: float, steps: int, seed: int, record_every: int | None = None,
             eval_every: int | None = None, chunk: int = 2000, trials=None, n_test: int = 50,
             test_seed: int | None = None, backend: str = "numba") -> SimResult:
    """Run one learning rule on all (or the selected global ``trials``) of ``task`` for ``steps`` Euler steps.

    Spikes come from :class:`SpikeSource` (``seed``) in chunks of at most ``chunk`` steps; the chunk
    size does not change the results.  ``eta`` in code units (see module doc; e.g. ``ETA_CODE[rule]``).
    Weights are recorded at steps 0, ``record_every``, 2 ``record_every``, ... <= ``steps`` (None: no
    recording); the metrics of :mod:`emulator.metrics` are evaluated on a per-trial test set of
    ``n_test`` USP vectors (``test_seed``, default ``seed``) at steps 0, ``eval_every``, ... (None: at
    0 and ``steps``); no metrics (None) for tasks without ``w_target``.
    ``backend='numba'`` (default) runs the steps in a compiled loop (same arithmetic, ~10x faster;
    results agree with ``backend='numpy'`` -- the per-step :func:`delta_natural` etc. -- to rounding,
    ~1e-13 relative); parametrizations other than Identity/Attenuation/Sinh use numpy.
    Raises ``FloatingPointError`` if the weights diverge.
    """
    if not isinstance(task, Task):
        raise ValueError(f"task must be a Task (got {type(task).__name__})")
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be an integer >= 0 (got steps={steps!r})")
    if int(chunk) != chunk or chunk < 1:
        raise ValueError(f"chunk must be an integer >= 1 (got chunk={chunk!r})")
    steps, chunk = int(steps), int(chunk)
    if backend not in ("numba", "numpy"):
        raise ValueError(f"backend must be 'numba' or 'numpy' (got backend={backend!r})")
    kern = Rule(rule, task.rates, task.params, task.f, eta)
    nb_args = kern.kernel_args() if backend == "numba" else None
    src = SpikeSource(task, seed, trials)
    tr = src.trials
    W = task.w_init[tr].copy()
    Wt = None if task.w_target is None else task.w_target[tr]
    t_eval = _event_steps(eval_every, steps, "eval_every")
    t_rec = (np.zeros(0, dtype=np.int64) if record_every is None
             else _event_steps(record_every, steps, "record_every"))
    X_test = None if Wt is None else test_set(task, seed if test_seed is None else test_seed, n_test, tr)
    p, f = task.params, task.f
    rm, kl, wd, rec = [], [], [], []

    def events(t):
        if t in t_eval_set and Wt is not None:
            rm.append(rate_rmse_hz(W, Wt, X_test, p, f))
            kl.append(kl_cost(W, Wt, X_test, p, f))
            wd.append(weight_distance(W, Wt))
        if t in t_rec_set:
            rec.append(W.copy())

    t_eval_set, t_rec_set = set(t_eval.tolist()), set(t_rec.tolist())
    events(0)
    drive(_SimEngine(W, kern, nb_args, eta, events), src, steps, chunk,
          next_stop=stops_at(sorted(t_eval_set | t_rec_set | {steps})))
    K, M, N = W.shape
    return SimResult(
        W=W, t_record=t_rec,
        W_record=np.array(rec) if rec else np.zeros((0, K, M, N)),
        t_eval=t_eval,
        rmse=None if Wt is None else np.array(rm),
        kl=None if Wt is None else np.array(kl),
        wdist=None if Wt is None else np.array(wd),
        dt=p.dt,
    )


class _SimEngine:
    """:func:`simulate`'s steps for :func:`emulator.drive.drive`: the compiled loop (or the
    numpy rule) on the USPs of :meth:`SpikeSource.next`; after every chunk a divergence
    check and the events (metrics, weight records) of that step."""

    def __init__(self, W, kern, nb_args, eta, events):
        self.W, self.kern, self.nb_args, self.eta, self.events = W, kern, nb_args, eta, events

    @staticmethod
    def spike_kwargs(n, done):
        return {"return_usp": True}

    def chunk(self, spikes, done, rows):
        _, Y, x = spikes
        Yf = Y.astype(np.float64)
        if self.nb_args is not None:
            run_chunk(self.W, x, Yf, self.nb_args)
        else:
            for j in range(x.shape[0]):
                self.W += self.kern(self.W, x[j], Yf[j])

    def chunk_end(self, done):
        if not np.all(np.isfinite(self.W)):
            raise FloatingPointError(f"weights became non-finite before step {done} "
                                     f"(eta={self.eta!r} too large?)")
        self.events(done)
