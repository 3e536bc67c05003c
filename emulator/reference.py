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

import math
from dataclasses import dataclass

import numba
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

from .spikes import SpikeSource, spike_prefixes, spikes_step
from .threads import run_threads, trial_blocks
from .task import IDENTITY, Attenuation, Parametrization, Sinh, Task

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


#: Per-neuron variables recorded by :func:`run_chunk`, in the order of its ``rec_neuron`` axis 0.
NEURON_VARS = ("potential", "sigma", "error", "gamma_s", "post")
#: Per-afferent variables recorded by :func:`run_fused`, in the order of its ``rec_aff`` axis 0.
AFFERENT_VARS = ("trace_m", "trace_s", "usp")
#: Columns of the running extremes ``ext`` (K, 2, len) of :func:`run_chunk` / :func:`run_fused`
#: (the integer datapath's recordable variables, in its order).
EXTREME_VARS = AFFERENT_VARS + NEURON_VARS + ("weights",)
_E_TM, _E_TS, _E_USP, _E_V, _E_SIGMA, _E_ERR, _E_GAMMA, _E_POST, _E_W = range(len(EXTREME_VARS))


def new_extremes(K: int) -> np.ndarray:
    """Running extremes of K trials before any step: ``ext[:, 0]`` = +inf (min),
    ``ext[:, 1]`` = -inf (max), shape (K, 2, len(EXTREME_VARS))."""
    ext = np.empty((K, 2, len(EXTREME_VARS)))
    ext[:, 0] = np.inf
    ext[:, 1] = -np.inf
    return ext


@numba.njit(cache=True, inline="always")
def _fold(lo, hi, q, v):
    """Running extremes ``lo[q]``, ``hi[q]`` (branch-free)."""
    a = lo[q]
    lo[q] = v if v < a else a
    b = hi[q]
    hi[q] = v if v > b else b


@numba.njit(cache=True, inline="always")
def _trial_step(W, k, xk, yk, r, ceps_over_r, q, ceps, beta, theta, phidt, A, c_u, c_w, eta,
                rule, fkind, alpha, wscale, ws, fp, rec, row, rec_w, rec_neuron, ext):
    """One Euler step of trial ``k``: USPs ``xk`` (N,) [mV], teacher counts ``yk`` (M,).
    With ``rec``, the weights after the update go to ``rec_w[row, k]`` and the
    :data:`NEURON_VARS` at the weights before it to ``rec_neuron[:, row, k]`` (when those
    arrays are not empty).  With ``ext`` (not None) every step folds the USPs, the neuron
    values and the weights it starts from into the running extremes ``ext[k, 0]`` (min) and
    ``ext[k, 1]`` (max), columns :data:`EXTREME_VARS` (gamma_s and post only for the
    natural-gradient rules; the weights after a chunk's last step: :func:`_fold_weights`).
    ``ext`` None compiles without any of it."""
    N = xk.shape[0]
    M = W.shape[1]
    keep_w = rec_w.shape[0] > 0
    keep_neuron = rec_neuron.shape[1] > 0
    S = 0.0
    lx = hx = lw = hw = 0.0
    if ext is not None:
        lx, hx = ext[k, 0, _E_USP], ext[k, 1, _E_USP]
        lw, hw = ext[k, 0, _E_W], ext[k, 1, _E_W]
    for i in range(N):
        S += xk[i]
        if ext is not None:     # beside the sum's dependency chain: free
            v = xk[i]
            lx = v if v < lx else lx
            hx = v if v > hx else hx
    for j in range(M):
        V = 0.0
        mm = 0.0
        vv = 0.0
        for i in range(N):
            w = W[k, j, i]
            if ext is not None:
                lw = w if w < lw else lw
                hw = w if w > hw else hw
            if fkind == 0:
                ws[i] = w
                fp[i] = 1.0
            elif fkind == 1:
                ws[i] = alpha[i] * w
                fp[i] = alpha[i]
            else:
                ws[i] = wscale * math.sinh(w / wscale)
                fp[i] = math.cosh(w / wscale)
            V += ws[i] * xk[i]
            mm += ws[i] * r[i]
            vv += ws[i] * ws[i] * r[i]
        vv /= ceps
        s, c = sig_pair(beta * (V - theta))
        err = float(yk[j]) - phidt * s
        ef = eta * c * err
        I1 = 1.0
        gu = 0.0
        gw = 0.0
        if rule == 1:
            I1, c2, c3 = moments_scalar(mm, vv, beta, theta, A, 3)
            g1, g2, g3, g4 = g_matrix_scalar(I1, c2, c3, mm, vv, q)
            gu = -ceps * (ceps * S * g1 + V * g3)
            gw = ceps * S * g2 + V * g4
        elif rule == 2 or (rec and keep_neuron):
            I1, _c2, _c3 = moments_scalar(mm, vv, beta, theta, A, 1)
            gu = ceps * c_u
            gw = c_w * V
        if rec and keep_neuron:     # values of step k at the weights before its update
            rec_neuron[0, row, k, j] = V
            rec_neuron[1, row, k, j] = s
            rec_neuron[2, row, k, j] = err
            rec_neuron[3, row, k, j] = 1.0 / I1
            rec_neuron[4, row, k, j] = ef / I1
        if ext is not None:
            lo = ext[k, 0]
            hi = ext[k, 1]
            _fold(lo, hi, _E_V, V)
            _fold(lo, hi, _E_SIGMA, s)
            _fold(lo, hi, _E_ERR, err)
            if rule != 0:           # the Euclidean rule computes no gamma_s
                _fold(lo, hi, _E_GAMMA, 1.0 / I1)
                _fold(lo, hi, _E_POST, ef / I1)
        if rule == 0:
            for i in range(N):
                W[k, j, i] += ef * fp[i] * xk[i]
        else:
            ef = ef / I1
            for i in range(N):
                W[k, j, i] += ef * (ceps_over_r[i] * xk[i] - gu + gw * ws[i]) / fp[i]
        if rec and keep_w:
            for i in range(N):
                rec_w[row, k, j, i] = W[k, j, i]
    if ext is not None:
        ext[k, 0, _E_USP], ext[k, 1, _E_USP] = lx, hx
        ext[k, 0, _E_W], ext[k, 1, _E_W] = lw, hw


@numba.njit(cache=True, inline="always")
def _fold_weights(W, k, ext):
    """Fold trial ``k``'s current weights into its running extremes (at the end of a chunk:
    each step folds the weights it starts from)."""
    if ext is not None:
        lw, hw = ext[k, 0, _E_W], ext[k, 1, _E_W]
        for j in range(W.shape[1]):
            for i in range(W.shape[2]):
                w = W[k, j, i]
                lw = w if w < lw else lw
                hw = w if w > hw else hw
        ext[k, 0, _E_W], ext[k, 1, _E_W] = lw, hw


@numba.njit(cache=True, nogil=True)
def _chunk_kernel(W, x, y, r, ceps_over_r, q, ceps, beta, theta, phidt, A, c_u, c_w, eta, rule,
                  fkind, alpha, wscale, ws, fp, k0, record_every, rec_w, rec_neuron, ext):
    """Body of :func:`run_chunk` (arguments as there, ``args`` spread out)."""
    n, K, N = x.shape
    for k in range(K):
        for t in range(n):
            rec = record_every > 0 and (k0 + t + 1) % record_every == 0
            row = (k0 + t + 1) // record_every - k0 // record_every - 1 if rec else 0
            _trial_step(W, k, x[t, k], y[t, k], r, ceps_over_r, q, ceps, beta, theta, phidt, A,
                        c_u, c_w, eta, rule, fkind, alpha, wscale, ws, fp, rec, row, rec_w,
                        rec_neuron, ext)
        _fold_weights(W, k, ext)


@numba.njit(cache=True, nogil=True)
def _fused_kernel(sp, T, trials, seed, r, ceps_over_r, q, ceps, beta, theta, phidt, A, c_u,
                  c_w, eta, rule, fkind, alpha, wscale, ws, fp, W, k0, record_every, rec_w,
                  rec_neuron, rec_aff, teach, ext):
    """:func:`_chunk_kernel` over the next ``T`` steps with the spikes drawn inside the loop
    (:func:`emulator.spikes.spikes_step`, bit for bit as :class:`emulator.spikes.SpikeSource`:
    ``sp`` its kernel arguments, whose float64 traces are advanced in place); no (T, B, N)
    array exists.  ``teach`` (K, M) accumulates the teacher spikes.  ``rec_aff`` (3, R, K, N)
    (or with R = 0: nothing) receives the traces a_m, a_s and the USPs of the recorded steps;
    with ``ext`` the traces' running extremes go there with the rest."""
    K, M, N = W.shape
    keep_aff = rec_aff.shape[1] > 0
    pin, pteach = spike_prefixes(seed, k0, T)
    spk = np.zeros(N, np.uint8)
    xf = np.zeros(N, np.float64)
    y = np.zeros(M, np.uint8)
    for k in range(K):
        tb = np.int64(trials[k]) << 32
        am = sp.am[k]
        as_ = sp.as_[k]
        # The traces are >= +0.0 (sums of non-negative terms from +0.0), so their bit patterns
        # read as int64 are in the same order as the values: integer min / max, which LLVM
        # vectorizes (float ones it does not).  Extremes of +-inf start as +-large codes.
        amb = am.view(np.int64)
        asb = as_.view(np.int64)
        lm = hm = ls = hs = np.int64(0)
        if ext is not None:
            eb = ext[k].view(np.int64)
            lm, hm, ls, hs = eb[0, _E_TM], eb[1, _E_TM], eb[0, _E_TS], eb[1, _E_TS]
        for t in range(T):
            spikes_step(sp, k, tb, pin[t], pteach[t], spk, xf, y)
            for j in range(M):
                teach[k, j] += y[j]
            if ext is not None:
                for i in range(N):
                    lm = min(lm, amb[i])
                    hm = max(hm, amb[i])
                    ls = min(ls, asb[i])
                    hs = max(hs, asb[i])
            rec = record_every > 0 and (k0 + t + 1) % record_every == 0
            row = (k0 + t + 1) // record_every - k0 // record_every - 1 if rec else 0
            if rec and keep_aff:
                for i in range(N):
                    rec_aff[0, row, k, i] = am[i]
                    rec_aff[1, row, k, i] = as_[i]
                    rec_aff[2, row, k, i] = xf[i]
            _trial_step(W, k, xf, y, r, ceps_over_r, q, ceps, beta, theta, phidt, A, c_u, c_w,
                        eta, rule, fkind, alpha, wscale, ws, fp, rec, row, rec_w, rec_neuron, ext)
        _fold_weights(W, k, ext)
        if ext is not None:
            eb = ext[k].view(np.int64)
            eb[0, _E_TM], eb[1, _E_TM], eb[0, _E_TS], eb[1, _E_TS] = lm, hm, ls, hs


def run_chunk(W, x, y, args, k0: int = 0, record_every: int = 0, rec_w=None, rec_neuron=None,
              ext=None) -> None:
    """Apply n Euler steps in place, compiled: W (K, M, N); x (n, K, N) USPs [mV]; y (n, K, M)
    teacher counts; ``args`` = :meth:`Rule.kernel_args` (rule, constants, scratch buffers).

    Same arithmetic as :class:`Rule` (up to summation order, ~1e-13 relative).  Optional
    recording, for the global steps k = k0 + t with ``(k + 1) % record_every == 0`` (row r for
    the r-th such step of the chunk): ``rec_w`` (R, K, M, N) gets the weights after the update
    of step k; ``rec_neuron`` (5, R, K, M) gets :data:`NEURON_VARS` of step k, computed at the
    weights before its update (as :meth:`Rule.step_variables`).  R must equal the number of
    recorded steps in the chunk; pass None (or a zero-length array) to skip either record.
    ``ext`` (K, 2, len(:data:`EXTREME_VARS`)), from :func:`new_extremes`, accumulates the
    running minimum (``ext[:, 0]``) and maximum (``ext[:, 1]``) of each trial's values over
    every step, the weights' initial values included (the traces are not known here: their
    columns stay as they were); None (the default) compiles a loop without them.
    """
    K, M, N = W.shape
    n = x.shape[0]
    # the kernel does not bound-check: the row counts must match the recorded steps exactly
    n_rows = (k0 + n) // record_every - k0 // record_every if record_every > 0 else 0
    rec_w, rec_neuron = _rec_arrays(K, M, N, n_rows, rec_w, rec_neuron)
    ext = _ext_array(K, ext)
    _chunk_kernel(W, x, y, *args, int(k0), int(record_every), rec_w, rec_neuron, ext)


def _ext_array(K, ext):
    if ext is None:
        return None
    if ext.shape != (K, 2, len(EXTREME_VARS)) or ext.dtype != np.float64 \
            or not ext.flags.c_contiguous:
        raise ValueError(f"ext must be a C-contiguous float64 array of shape "
                         f"{(K, 2, len(EXTREME_VARS))} (got {ext.dtype} {ext.shape})")
    return ext


def _rec_arrays(K, M, N, n_rows, rec_w, rec_neuron):
    if rec_w is None:
        rec_w = np.empty((0, K, M, N))
    elif rec_w.shape[0] and rec_w.shape != (n_rows, K, M, N):
        raise ValueError(f"rec_w must have shape {(n_rows, K, M, N)} (got {rec_w.shape})")
    if rec_neuron is None:
        rec_neuron = np.empty((len(NEURON_VARS), 0, K, M))
    elif rec_neuron.shape[1] and rec_neuron.shape != (len(NEURON_VARS), n_rows, K, M):
        raise ValueError(f"rec_neuron must have shape {(len(NEURON_VARS), n_rows, K, M)} "
                         f"(got {rec_neuron.shape})")
    return rec_w, rec_neuron


def run_fused(W, src: SpikeSource, n_steps: int, args, record_every: int = 0, rec_w=None,
              rec_neuron=None, teach=None, parallel: bool = False, rec_aff=None,
              ext=None) -> None:
    """:func:`run_chunk` over the next ``n_steps`` steps of ``src``, with the spikes drawn
    inside the compiled loop (same bits as ``src.next`` + :func:`run_chunk`); ``src``'s traces
    and step advance as if ``src.next(n_steps)`` had been called.  ``teach`` (K, M) int64
    accumulates the teacher spikes.  ``parallel=True`` runs blocks of trials on threads
    (each with its own scratch; trials are independent, so the bits do not change).
    ``src`` must hold the trials of ``W``, in order.  ``rec_aff`` (3, R, K, N) receives
    :data:`AFFERENT_VARS` (the traces a_m, a_s and the USPs [mV]) of the recorded steps;
    ``ext`` as in :func:`run_chunk`, the traces' columns included."""
    K, M, N = W.shape
    k0 = src.k
    n_rows = (k0 + n_steps) // record_every - k0 // record_every if record_every > 0 else 0
    rec_w, rec_neuron = _rec_arrays(K, M, N, n_rows, rec_w, rec_neuron)
    if rec_aff is None:
        rec_aff = np.empty((len(AFFERENT_VARS), 0, K, N))
    elif rec_aff.shape[1] and rec_aff.shape != (len(AFFERENT_VARS), n_rows, K, N):
        raise ValueError(f"rec_aff must have shape {(len(AFFERENT_VARS), n_rows, K, N)} "
                         f"(got {rec_aff.shape})")
    ext = _ext_array(K, ext)
    teach = np.zeros((K, M), np.int64) if teach is None else teach
    sp = src.kernel_args()
    blocks = trial_blocks(K, parallel)
    head, scratch = args[:-2], args[-2:]

    outs = ((rec_w, 1), (rec_neuron, 2), (rec_aff, 2))     # (record, its trial axis)

    def call(b0, b1):
        spb = sp._replace(fw=sp.fw[b0:b1], am=sp.am[b0:b1], as_=sp.as_[b0:b1])
        ws = tuple(np.empty_like(a) for a in scratch) if len(blocks) > 1 else scratch
        # C-contiguous records of this block's trials (copied into the outputs afterwards):
        # one compiled signature whatever the slices the caller passes
        bufs = [np.empty(a.shape[:ax] + (b1 - b0,) + a.shape[ax + 1:]) for a, ax in outs]
        _fused_kernel(spb, np.int64(n_steps), src.trials[b0:b1], np.uint64(src.seed), *head, *ws,
                      W[b0:b1], np.int64(k0), np.int64(record_every), *bufs, teach[b0:b1],
                      None if ext is None else ext[b0:b1])
        for (a, ax), buf in zip(outs, bufs):
            if buf.size:
                a[(slice(None),) * ax + (slice(b0, b1),)] = buf
    run_threads([lambda b=b: call(*b) for b in blocks])
    src.advance(n_steps)


def compiled_parametrization(f, N):
    """(fkind, alpha (N,), w_scale) of ``f`` for the compiled loop: 0 identity, 1 attenuation,
    2 sinh; None for other parametrizations."""
    if getattr(f, "is_identity", False):
        return 0, np.ones(1), 1.0
    if isinstance(f, Attenuation):
        return 1, np.array(np.broadcast_to(f.alpha, (N,)), dtype=np.float64), 1.0
    if isinstance(f, Sinh):
        return 2, np.ones(1), float(f.w_scale)
    return None


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
    boundaries = sorted(t_eval_set | t_rec_set | {steps})
    events(0)
    t = 0
    for b in boundaries:
        while t < b:
            n = min(chunk, b - t)
            _, Y, x = src.next(n, return_usp=True)
            Yf = Y.astype(np.float64)
            if nb_args is not None:
                run_chunk(W, x, Yf, nb_args)
            else:
                for j in range(n):
                    W += kern(W, x[j], Yf[j])
            t += n
            if not np.all(np.isfinite(W)):
                raise FloatingPointError(f"weights became non-finite before step {t} (eta={eta!r} too large?)")
        if b > 0:
            events(b)
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
