"""The learning rule's mathematics, written once, below every backend.

The float64 reference (:mod:`emulator.reference`), the integer datapath's discretization
(:mod:`emulator.discretize`), the learning engine's design (:mod:`emulator.learning`), the
experiments and the analysis all import these functions instead of recomputing them
(docs/model.md describes every symbol):

* the input statistics: the homosynaptic factor c_ε / r_i, q = c_ε Σ r_i and the membrane
  potential's Gaussian statistics (m, v) from the somatic weights and the input rates
  (docs/model.md#membrane-potential-statistics);
* the Gaussian moments E[h], E[h'], E[h''] of h = φ'²/φ and the G matrix of the natural
  rule's coefficients (docs/model.md#coefficients), each beside its scalar compiled twin for
  the numba step loops;
* the natural rule's per-step terms γ_u, γ_w and the bracket
  ``c_ε x_i / r_i - γ_u + γ_w f(w_i)`` (docs/model.md#natural-rule,
  docs/model.md#approximate-rule);
* the neuron's sigmoid tables and its filter decay integers (the generic table and decay
  arithmetic stays in :mod:`fixedpoint`, which knows nothing of neurons).

Every expression keeps the float operation order its callers used before they shared it:
some of these floats are rounded to chip integers (the initial running mean of
σ (1 - σ)², the γ_s table), so a reordered sum could move a bit of the golden results.
"""
from __future__ import annotations

import functools
import math

import numba
import numpy as np

from fixedpoint.lut import LUT
from fixedpoint.qformat import QFormat

from .params import NeuronParams

__all__ = [
    "homosynaptic_factor", "input_q", "membrane_stats", "membrane_stats_row",
    "sig_pair", "moments_scalar", "moments", "gauss_moments", "g_matrix", "g_matrix_scalar",
    "coefficients", "natural_terms", "natural_terms_scalar", "approx_terms", "rule_bracket",
    "sigmoid", "SIGMA_ROUNDING", "sigma_format", "sigma_table", "sigma_node_table",
    "decay_integers",
]

DEFAULT_PARAMS = NeuronParams()


# =============================================================================== input statistics
def homosynaptic_factor(rates, c_eps: float) -> np.ndarray:
    """The natural rule's homosynaptic factor c_ε / r_i per afferent, 0 where r_i = 0.

    Parameters
    ----------
    rates : array_like (N,)
        Input rates r_i [Hz], >= 0.
    c_eps : float
        c_ε = 1/∫ε² dt [s] (:attr:`emulator.params.NeuronParams.c_eps`).

    Returns
    -------
    numpy.ndarray (N,)
        c_ε / r_i [s²], which is 1/Var[x_i] of the afferent's USP
        (docs/model.md#membrane-potential-statistics); 0 for silent afferents, which get no
        homosynaptic term (docs/model.md#natural-rule).
    """
    r = np.asarray(rates, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(r > 0, c_eps / np.where(r > 0, r, 1.0), 0.0)


def input_q(rates, c_eps: float) -> float:
    """q = c_ε Σ_i r_i (dimensionless; 78.0 for the Fig 3 task), rates in Hz, c_ε in s."""
    return c_eps * float(np.sum(rates))


def membrane_stats(ws, rates, c_eps: float):
    """Mean and variance of the membrane potential in the Gaussian approximation.

    Parameters
    ----------
    ws : array_like (..., N)
        Somatic weights f(w_i) (dimensionless).
    rates : array_like (N,)
        Input rates r_i [Hz].
    c_eps : float
        c_ε [s].

    Returns
    -------
    m : numpy.ndarray (...)
        m = Σ_i f(w_i) r_i [mV].
    v : numpy.ndarray (...)
        v = Σ_i f(w_i)² r_i / c_ε [mV²].

    Notes
    -----
    Both sums are matrix products (``ws @ rates``), as every caller computed them; the
    compiled step loops sum afferent by afferent instead (:func:`membrane_stats_row`).
    """
    ws = np.asarray(ws)
    m = ws @ rates
    v = (ws * ws) @ rates / c_eps
    return m, v


@numba.njit(cache=True, nogil=True)
def membrane_stats_row(ws, rates, c_eps):
    """:func:`membrane_stats` of one neuron (ws, rates (N,)) summed afferent by afferent in
    index order, as the compiled step loops do; returns (m [mV], v [mV²])."""
    mm = 0.0
    vv = 0.0
    for i in range(ws.shape[0]):
        mm += ws[i] * rates[i]
        vv += ws[i] * ws[i] * rates[i]
    return mm, vv / c_eps


# =============================================================================== Gaussian moments
_HALF_WIDTH = 9.0     # window half-width in s.d.: neglected mass <= 8 exp(-81/2) ~ 2e-17 (relative)
_STEP_SD = 0.5        # trapezoid step <= 0.5 s.d.      (Gaussian aliasing ~ exp(-2 pi^2 / 0.25) ~ 1e-34)
_STEP_BETA = 0.45     # trapezoid step <= 0.45/beta mV  (aliasing from the poles of sigma at pi/beta)
_MAX_NODES = 4097


@numba.njit(cache=True, nogil=True)
def sig_pair(a):
    """(σ(a), 1-σ(a)) of a = β (V - θ) (dimensionless), both with full relative accuracy."""
    e = math.exp(-abs(a))
    d = 1.0 / (1.0 + e)
    if a >= 0.0:
        return d, e * d
    return e * d, d


@numba.njit(cache=True, nogil=True)
def moments_scalar(m, v, beta, theta, A, need):
    """E[h], E[h'], E[h''] for V ~ N(m, v), h = A σ (1-σ)², A = φ_max β² (see :func:`gauss_moments`).

    m [mV], v [mV²], β [1/mV], θ [mV], A [Hz/mV²]; ``need`` = 1 computes E[h] only (the
    other two are returned as 0).  Units: Hz/mV², Hz/mV³, Hz/mV⁴.
    """
    if v <= 0.0:
        s, c = sig_pair(beta * (m - theta))
        h = A * s * c * c
        return h, beta * h * (1.0 - 3.0 * s), beta * beta * h * (1.0 + s * (12.0 * s - 9.0))
    sd = math.sqrt(v)
    ustar = min(max(theta, m - 2.0 * beta * v), m + beta * v)
    width = 2.0 * _HALF_WIDTH * sd
    n = int(math.ceil(width / min(_STEP_SD * sd, _STEP_BETA / beta))) + 1
    n = min(max(n, 2), _MAX_NODES)
    step = width / (n - 1)
    lo = ustar - _HALF_WIDTH * sd
    i1 = 0.0
    i2 = 0.0
    i3 = 0.0
    for j in range(n):
        u = lo + j * step
        z = (u - m) / sd
        s, c = sig_pair(beta * (u - theta))
        hw = math.exp(-0.5 * z * z) * s * c * c
        if j == 0 or j == n - 1:
            hw *= 0.5
        i1 += hw
        if need > 1:
            i2 += hw * (1.0 - 3.0 * s)
            i3 += hw * (1.0 + s * (12.0 * s - 9.0))
    norm = A * step / math.sqrt(2.0 * math.pi * v)
    return i1 * norm, i2 * norm * beta, i3 * norm * beta * beta


@numba.njit(cache=True, nogil=True)
def _moments_flat(m, v, beta, theta, A, need, I1, c2, c3):
    for k in range(m.size):
        I1[k], c2[k], c3[k] = moments_scalar(m[k], v[k], beta, theta, A, need)


def moments(m, v, params, need=3):
    """E[h], E[h'], E[h''] for V ~ N(m, v), h = φ'²/φ = φ_max β² σ (1-σ)²; no input checks.

    m [mV] and v [mV²] broadcast; returns arrays of their shape (Hz/mV², Hz/mV³, Hz/mV⁴),
    the last two None when ``need`` == 1.

    Quadrature: trapezoid rule on the window u* ± 9 sqrt(v), where u* = clip(θ, m - 2βv, m + βv)
    is the maximiser of the log-concave envelope φ_max β² min(e^{β(u-θ)}, e^{-2β(u-θ)}) N(u; m, v)
    of the integrand (envelope <= 8x the integrand at u*, so the neglected tails are < 2e-17
    relative).  The integrand is analytic in a strip of half-width π/β around the real axis, so
    the trapezoid rule converges geometrically; the node count per element is chosen so that
    the step is <= min(0.5 sqrt(v), 0.45/β) (37 nodes at v = 4 mV², 269 at v = 500 mV²), giving
    ~1e-13 relative accuracy.  The window shrinks with sqrt(v), so narrow Gaussians are exact
    where quad(-inf, inf) silently returns 0 (docs/model.md#coefficients).  v == 0: point values.
    Each element is computed independently (results do not depend on the batch).
    """
    m, v = np.broadcast_arrays(np.asarray(m, dtype=np.float64), np.asarray(v, dtype=np.float64))
    mf = np.array(m, dtype=np.float64).ravel()      # writable contiguous copies for numba
    vf = np.array(v, dtype=np.float64).ravel()
    I1, c2, c3 = np.empty(mf.size), np.empty(mf.size), np.empty(mf.size)
    _moments_flat(mf, vf, params.beta, params.theta, params.phi_max * params.beta ** 2, need, I1, c2, c3)
    if need == 1:
        return I1.reshape(m.shape), None, None
    return I1.reshape(m.shape), c2.reshape(m.shape), c3.reshape(m.shape)


def _check_mv(m, v):
    m = np.asarray(m, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    if not np.all(np.isfinite(m)):
        raise ValueError("m must be finite (got non-finite mean membrane potential)")
    if not np.all(np.isfinite(v)) or np.any(v < 0):
        raise ValueError(f"v must be finite and >= 0 mV^2 (got min v={np.min(v)!r})")
    return np.broadcast_arrays(m, v)


def gauss_moments(m, v, params: NeuronParams = DEFAULT_PARAMS):
    """(I1, c2, c3) = (E[h(V)], E[h'(V)], E[h''(V)]) for V ~ N(m, v), broadcasting over m, v.

    m [mV] finite, v [mV²] finite and >= 0 (checked).  By Stein's lemma c2 = (I2 - I1 m)/v
    and c3 = (I3 - I1(m²+v) - 2 c2 m v)/v² (docs/model.md#coefficients); evaluating
    h' = β h (1-3σ) and h'' = β² h (1 - 9σ + 12σ²) directly avoids the cancellation of
    those raw-moment formulas for small v.
    """
    m, v = _check_mv(m, v)
    return moments(m, v, params)


def g_matrix(I1, c2, c3, m, v, q):
    """Closed-form G = -C (I1*Id + Q C)^-1, C = [[I1, c2], [c2, c3]], Q = [[q, m], [m, v]].

    Moments as :func:`gauss_moments` returns them, m [mV], v [mV²], q [1]; returns
    (g1, g2, g3, g4) (docs/model.md#coefficients).  Broadcasts (numpy) or takes scalars.
    """
    a = I1 * (1.0 + q) + m * c2
    b = q * c2 + m * c3
    c = m * I1 + v * c2
    d = I1 + m * c2 + v * c3
    det = a * d - b * c
    g1 = -(I1 * d - c2 * c) / det
    g2 = -(c2 * a - I1 * b) / det
    g3 = -(c2 * d - c3 * c) / det
    g4 = -(c3 * a - c2 * b) / det
    return g1, g2, g3, g4


#: ``g_matrix`` compiled for scalars (same source, used inside the numba step loops).
g_matrix_scalar = numba.njit(cache=True)(g_matrix)


def coefficients(m, v, q, params: NeuronParams = DEFAULT_PARAMS):
    """Natural-gradient coefficients (γ_s, g1, g2, g3, g4), docs/model.md#coefficients (paper Eqs. 77-109).

    m = Σ f(w_i) r_i [mV], v = Σ f(w_i)² r_i / c_ε [mV²] (:func:`membrane_stats`),
    q = c_ε Σ r_i (:func:`input_q`); all broadcast.  γ_s = 1/I1 [mV² s] and
    [[g1, g2], [g3, g4]] = -C (I1 Id + Q C)^-1 (equal to the code's K1/K2 formulas;
    g2 == g3 up to rounding).  Accurate to ~1e-12 relative for |m| <= 30 mV, 0 <= v <= 500 mV².
    """
    m, v = _check_mv(m, v)
    q = np.asarray(q, dtype=np.float64)
    if not np.all(np.isfinite(q)) or np.any(q < 0):
        raise ValueError(f"q must be finite and >= 0 (got min q={np.min(q)!r})")
    I1, c2, c3 = moments(m, v, params)
    return (1.0 / I1,) + g_matrix(I1, c2, c3, m, v, q)


# =============================================================================== the rule's terms
def natural_terms(c_eps, S, V, g1, g2, g3, g4):
    """The natural rule's heterosynaptic factors (γ_u, γ_w) of one step.

    γ_u = -c_ε (c_ε S g1 + V g3) and γ_w = c_ε S g2 + V g4 (docs/model.md#natural-rule) from
    c_ε [s], the total USP S = Σ_i x_i [mV], the membrane potential V [mV] and the G matrix
    (:func:`g_matrix`).  Broadcasts (numpy) or takes scalars.
    """
    gu = -c_eps * (c_eps * S * g1 + V * g3)
    gw = c_eps * S * g2 + V * g4
    return gu, gw


#: ``natural_terms`` compiled for scalars (same source, used inside the numba step loops).
natural_terms_scalar = numba.njit(cache=True)(natural_terms)


def approx_terms(V, params: NeuronParams):
    """The approximate rule's local stand-ins (γ_u, γ_w) = (c_ε c_u, c_w V) for membrane
    potentials V [mV] (docs/model.md#approximate-rule); γ_u is a scalar, γ_w has V's shape."""
    return params.c_eps * params.c_u, params.c_w * V


def rule_bracket(homo_x, gamma_u, gamma_w, ws):
    """The natural and approximate rules' bracket ``c_ε x_i / r_i - γ_u + γ_w f(w_i)``.

    ``homo_x`` = c_ε x_i / r_i (:func:`homosynaptic_factor` times the USPs), ``gamma_u`` and
    ``gamma_w`` already broadcastable against the somatic weights ``ws`` (the caller adds the
    afferent axis).  Evaluated left to right, as every copy did.
    """
    return homo_x - gamma_u + gamma_w * ws


# =============================================================================== neuron integers
def sigmoid(v, params: NeuronParams):
    """σ(V) = 1 / (1 + exp(-β (V - θ))) written as ½ (1 + tanh(½ β (V - θ))), V in mV: the
    float function both sigmoid tables sample (the tanh form is symmetric about θ)."""
    return 0.5 * (1.0 + np.tanh(0.5 * params.beta * (v - params.theta)))


#: Rounding of the sigmoid tables' entries (to nearest, halves up).
SIGMA_ROUNDING = "half_up"


def sigma_format(sigma_frac: int) -> QFormat:
    """The tables' entry format U(F_s + 1).F_s: σ in [0, 1] with F_s fractional bits."""
    return QFormat(sigma_frac + 1, sigma_frac, False)


def sigma_table(params: NeuronParams, v_fmt: QFormat, lut_bits: int, sigma_frac: int) -> LUT:
    """The integer datapath's sigmoid as a :class:`fixedpoint.LUT` over V's representable
    range (``v_fmt``, mV): 2**lut_bits + 1 nodes (the last one LSB past the top), entries
    σ(V) in :func:`sigma_format` rounded half up."""
    return LUT.build(functools.partial(sigmoid, params=params), v_fmt, lut_bits,
                     sigma_format(sigma_frac), rounding=SIGMA_ROUNDING)


def sigma_node_table(params: NeuronParams, span_mv: int, node_frac: int,
                     sigma_frac: int) -> np.ndarray:
    """The learning neuron's sigmoid table: σ at the nodes -span + j 2**-node_frac mV,
    j = 0 .. 2 span 2**node_frac (both ends included), in :func:`sigma_format` rounded half
    up, int64 (the neuron's lookup: :func:`emulator.learning.neuron.sigma_lookup`)."""
    nodes = -span_mv + np.arange(2 * span_mv * 2 ** node_frac + 1) * 2.0 ** -node_frac
    return sigma_format(sigma_frac).quantize(sigmoid(nodes, params), SIGMA_ROUNDING, "saturate")


def decay_integers(params: NeuronParams, decay_frac: int) -> tuple[int, int]:
    """The membrane and synaptic trace decays e^(-dt/τ_m), e^(-dt/τ_s) as U0.decay_frac
    integers, each ``round(decay * 2**decay_frac)`` (Python's round: halves to even)."""
    return (int(round(params.decay_m * 2 ** decay_frac)),
            int(round(params.decay_s * 2 ** decay_frac)))
