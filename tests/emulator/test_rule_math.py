"""emulator.rule_math against computations that share none of its code.

* The Gaussian moments against Stein's lemma: raw moments E[h V^k] by a dense numpy
  trapezoid over the sigmoid written with ``scipy.special.expit`` (no derivative formula).
* The G matrix and the natural rule's terms against the Fisher matrix of
  docs/model.md#coefficients, solved with ``numpy.linalg.solve``.
* (m, v) against Campbell's theorem with the PSP kernel integrated numerically, and the
  compiled row version against the array version.
* c_ε / r_i: exact quotients, zeros (and no warning) at r = 0.
* Both sigmoid tables within half an LSB of ``expit`` at their nodes, and each backend's
  table is the one rule_math builds; the decay integers within half an LSB of the exact decay.
"""
import math
import warnings

import numpy as np
import pytest
from scipy import integrate
from scipy.special import expit

from emulator import rule_math as RM
from emulator.discretize import discretize
from emulator.hwconfig import load
from emulator.params import NeuronParams
from emulator.task import fig3_task
from fixedpoint.qformat import QFormat

P = NeuronParams()
A = P.phi_max * P.beta ** 2


def _h(u, p=P):
    """φ'²/φ = φ_max β² σ (1 - σ)² with expit (mV -> Hz/mV²)."""
    a = p.beta * (u - p.theta)
    return p.phi_max * p.beta ** 2 * expit(a) * expit(-a) ** 2


def _raw_moments(m, v, n=200001):
    """E[h V^k], k = 0, 1, 2, for V ~ N(m, v): trapezoid on m ± 14 sd (error far below 1e-12)."""
    sd = math.sqrt(v)
    u = np.linspace(m - 14 * sd, m + 14 * sd, n)
    g = _h(u) * np.exp(-(u - m) ** 2 / (2 * v)) / math.sqrt(2 * math.pi * v)
    return [np.trapezoid(g * u ** k, u) if hasattr(np, "trapezoid") else np.trapz(g * u ** k, u)
            for k in range(3)]


@pytest.mark.parametrize("m,v", [(0.0, 4.0), (-5.0, 1.0), (10.0, 9.0), (18.0, 25.0),
                                 (3.0, 40.0)])
def test_moments_against_steins_lemma(m, v):
    """c2 = E[h'] = (I2 - I1 m) / v and c3 = E[h''] = (I3 - I1 (m² + v) - 2 c2 m v) / v²
    (docs/model.md#coefficients), the raw moments I_k = E[h V^(k-1)] by quadrature."""
    i1, i2, i3 = _raw_moments(m, v)
    c2 = (i2 - i1 * m) / v
    c3 = (i3 - i1 * (m * m + v) - 2 * c2 * m * v) / v ** 2
    I1, C2, C3 = RM.gauss_moments(m, v, P)
    assert abs(I1 - i1) <= 1e-9 * i1
    # c2, c3 change sign: relative to their natural scales beta I1, beta^2 I1
    assert abs(C2 - c2) <= 1e-7 * P.beta * i1
    assert abs(C3 - c3) <= 1e-6 * P.beta ** 2 * i1


def test_scalar_moments_are_the_array_moments_and_point_values_at_v_0():
    m, v = np.array([-3.0, 0.0, 12.5]), np.array([0.0, 4.0, 30.0])
    arr = np.array(RM.moments(m, v, P))
    for k in range(3):
        assert RM.moments_scalar(m[k], v[k], P.beta, P.theta, A, 3) == tuple(arr[:, k])
    h = _h(-3.0)
    assert arr[0, 0] == pytest.approx(h, rel=1e-14)


def _fisher(w, r, p=P):
    """F = I1 (Σ + r rᵀ) + c2 (r uᵀ + u rᵀ) + c3 u uᵀ, Σ = diag(r)/c_ε, u = Σ w."""
    m, v = float(w @ r), float((w * w) @ r / p.c_eps)
    I1, c2, c3 = (float(x) for x in RM.gauss_moments(m, v, p))
    u = r * w / p.c_eps
    F = I1 * (np.diag(r / p.c_eps) + np.outer(r, r)) + c2 * (np.outer(r, u) + np.outer(u, r)) \
        + c3 * np.outer(u, u)
    return F, (m, v, I1, c2, c3)


def test_g_matrix_is_minus_c_times_the_inverse():
    I1, c2, c3, m, v, q = 0.42, -0.03, 0.011, 1.5, 4.0, 78.0
    C = np.array([[I1, c2], [c2, c3]])
    Q = np.array([[q, m], [m, v]])
    G = -C @ np.linalg.inv(I1 * np.eye(2) + Q @ C)
    assert np.allclose(RM.g_matrix(I1, c2, c3, m, v, q), G.ravel(), rtol=1e-12, atol=0)
    assert RM.g_matrix_scalar(I1, c2, c3, m, v, q) == RM.g_matrix(I1, c2, c3, m, v, q)


def test_natural_terms_apply_the_inverse_fisher_matrix():
    """γ_s [c_ε x/r - γ_u + γ_w w] = F⁻¹ x for any USP vector x (docs/model.md#coefficients)."""
    rng = np.random.default_rng(4)
    N = 12
    r = np.where(np.arange(N) < 6, 10.0, 50.0)
    w = rng.uniform(-1, 1, N) / N
    x = rng.uniform(0.0, 40.0, N)
    F, (m, v, I1, c2, c3) = _fisher(w, r)
    q = RM.input_q(r, P.c_eps)
    g = RM.g_matrix(I1, c2, c3, m, v, q)
    V = float(w @ x)
    gu, gw = RM.natural_terms(P.c_eps, x.sum(), V, *g)
    natural = (1.0 / I1) * RM.rule_bracket(RM.homosynaptic_factor(r, P.c_eps) * x, gu, gw, w)
    assert np.allclose(natural, np.linalg.solve(F, x), rtol=1e-9, atol=0)
    assert RM.natural_terms_scalar(P.c_eps, x.sum(), V, *g) == (gu, gw)


def test_approx_terms_are_the_local_constants():
    V = np.array([-2.0, 3.5])
    gu, gw = RM.approx_terms(V, P)
    assert gu == P.c_eps * P.c_u and np.array_equal(gw, P.c_w * V)


def test_membrane_stats_follow_campbells_theorem():
    """m = Σ w r ∫ε and v = Σ w² r ∫ε² with the kernel integrated numerically."""
    def eps(t):
        return (math.exp(-t / P.tau_m) - math.exp(-t / P.tau_s)) / (P.tau_m - P.tau_s)
    int_eps = integrate.quad(eps, 0.0, 2.0, limit=200)[0]
    int_eps2 = integrate.quad(lambda t: eps(t) ** 2, 0.0, 2.0, limit=200)[0]
    rng = np.random.default_rng(5)
    r = rng.uniform(0.0, 60.0, 30)
    ws = rng.normal(0.0, 0.02, (3, 2, 30))
    m, v = RM.membrane_stats(ws, r, P.c_eps)
    assert m.shape == v.shape == (3, 2)
    assert np.allclose(m, (ws * r).sum(-1) * int_eps, rtol=1e-9)
    assert np.allclose(v, (ws * ws * r).sum(-1) * int_eps2, rtol=1e-9)
    mm, vv = RM.membrane_stats_row(ws[1, 0].copy(), r, P.c_eps)
    assert mm == pytest.approx(m[1, 0], rel=1e-14) and vv == pytest.approx(v[1, 0], rel=1e-14)


def test_homosynaptic_factor_is_c_eps_over_r_and_zero_for_silent_afferents():
    r = np.array([0.0, 5.0, 10.0, 0.0, 50.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = RM.homosynaptic_factor(r, P.c_eps)
    assert h.dtype == np.float64
    assert np.array_equal(h == 0, r == 0)
    assert [h[1], h[2], h[4]] == [P.c_eps / 5.0, P.c_eps / 10.0, P.c_eps / 50.0]
    assert RM.input_q(r, P.c_eps) == P.c_eps * 65.0


@pytest.mark.parametrize("params", [P, NeuronParams(theta=15.0, beta=0.5)])
def test_sigma_tables_within_half_an_lsb_of_the_sigmoid(params):
    frac = 16
    half = 0.5 + 1e-9
    # the learning neuron's table: nodes every 2**-2 mV over [-64, 64]
    tab = RM.sigma_node_table(params, 64, 2, frac)
    nodes = -64 + np.arange(tab.size) * 0.25
    assert tab.size == 2 * 64 * 4 + 1
    assert np.max(np.abs(tab - expit(params.beta * (nodes - params.theta)) * 2 ** frac)) <= half
    # the datapath's LUT over S16.8 mV with 2**9 bins
    lut = RM.sigma_table(params, QFormat(16, 8), 9, frac)
    xs = np.ldexp((lut.lo + (np.arange(lut.table.size) << lut.shift)).astype(float), -8)
    assert np.max(np.abs(lut.table - expit(params.beta * (xs - params.theta)) * 2 ** frac)) <= half


def test_each_backend_builds_its_tables_and_decays_in_rule_math():
    task = fig3_task(1, N=10)
    p = task.params
    cfg = load("fxp16")
    d = discretize(cfg, p, task.rates, 1e-3)
    po, sg = cfg["potential"], cfg["sigmoid"]
    assert np.array_equal(d.sigma_lut, RM.sigma_table(p, QFormat(po["bits"], po["frac"]),
                                                      sg["lut_bits"], sg["frac"]).table)
    assert (d.decay_m, d.decay_s) == RM.decay_integers(p, cfg["traces"]["decay_frac"])
    from emulator import learning
    le = learning.design_for_task(task, 2e-3)
    nf = le.neuron
    assert np.array_equal(le.sigma_lut, RM.sigma_node_table(p, nf.sigma_span_mv,
                                                            nf.sigma_node_frac, nf.sigma_frac))
    assert (le.dm, le.ds) == RM.decay_integers(p, nf.decay_frac)


def test_decay_integers_round_the_exact_decays():
    for frac in range(8, 25):
        dm, ds = RM.decay_integers(P, frac)
        assert abs(dm - math.exp(-P.dt / P.tau_m) * 2 ** frac) <= 0.5
        assert abs(ds - math.exp(-P.dt / P.tau_s) * 2 ** frac) <= 0.5
