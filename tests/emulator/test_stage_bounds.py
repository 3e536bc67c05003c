"""Stage bounds against float, in LSB.

Each fixed-datapath stage (``emulator/stages.py`` and its numba twin in
``emulator/stages_jit.py``) is compared with its float formula on the *same* inputs (the
stage's integer inputs read as reals), and the difference must stay within a bound derived
from the formats.  Notation: ``F_x`` fractional bits of x; a rounding site of mode r
contributes ``rho(r)`` output LSB: 1/2 for the nearest modes, < 1 for floor / trunc /
stochastic, 0 when its shift is <= 0 (an exact left shift).  A constant c held as
``c_mant * 2**-c_shift`` is off by at most ``2**-(c_shift + 1)`` (nearest mantissa;
``tests/emulator/test_discretize_math.py`` checks this for every constant).

Configs: loihi2_ideal, fxp16, fxp32, loihi1.  Also the learning neuron's sigma, error and
event probability (``loihi2``, kind learning_engine).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from emulator import learning, stages
from emulator import stages_jit as J
from emulator.discretize import POST_A_FRAC, POST_B_FRAC, discretize
from emulator.hwconfig import load
from emulator.params import NeuronParams
from emulator.reference import ETA_CODE
from emulator.task import fig3_task
from emulator.variables import SITE_INDEX, SITE_STREAMS
from fixedpoint.jit import stream_prefix

CONFIGS = ("loihi2_ideal", "fxp16", "fxp32", "loihi1")
SEED, STEP = 99, 12345
P = NeuronParams()
RATES = np.array([10.0] * 10 + [50.0] * 10)
#: a_root: sigma'' = beta^2 s (1-s)(1-2s) has its extrema at beta (V - theta) = +-ln(2 + sqrt 3)
A_ROOT = math.log(2.0 + math.sqrt(3.0))


def rho(mode: str, shift: int) -> float:
    """Output LSB lost by one rounding site of ``mode`` with right shift ``shift``."""
    if shift <= 0:
        return 0.0
    return 0.5 if mode in ("half_up", "half_even", "half_away") else 1.0


def c_eps(p: NeuronParams) -> float:
    """1 / int eps^2 (docs/model.md#membrane-potential-statistics), written out."""
    tm, ts = p.tau_m, p.tau_s
    return 1.0 / ((1.0 / (tm - ts)) ** 2 * (tm / 2 - 2 * tm * ts / (tm + ts) + ts / 2))


def sig(v):
    return 0.5 * (1.0 + np.tanh(0.5 * P.beta * (np.asarray(v, np.float64) - P.theta)))


def max_slope(v0, v1):
    """max of sigma' = beta s (1 - s) on [v0, v1] (at the point nearest theta)."""
    c = np.clip(P.theta, v0, v1)
    s = sig(c)
    return P.beta * s * (1 - s)


def max_curv(v0, v1):
    """max |sigma''| on [v0, v1]: at an end or at an interior extremum theta +- A_ROOT/beta."""
    def f(v):
        s = sig(v)
        return np.abs(P.beta ** 2 * s * (1 - s) * (1 - 2 * s))
    cands = [v0, v1] + [np.clip(P.theta + sgn * A_ROOT / P.beta, v0, v1) for sgn in (-1, 1)]
    return np.max(np.stack([f(c) for c in cands]), axis=0)


@pytest.fixture(scope="module", params=CONFIGS)
def d(request):
    return discretize(load(request.param), P, RATES, ETA_CODE["approx"])


def _prefix(site):
    return stream_prefix(np.uint64(SEED), np.uint64(SITE_STREAMS[SITE_INDEX[site]]), np.int64(STEP))


# ============================================================================ sigmoid
def sigma_bound(d, x):
    """Bound (output LSB) of the sigmoid stage at V codes ``x``.

    The stage returns the entry of the node at or below V (``below``) or interpolates
    linearly between the two nodes of V's bin [V0, V1) (``sigmoid.interpolate``); entries
    are sigma(node) rounded half up (<= 1/2 LSB).

    * node at or below: |err| <= 1/2 + (V - V0) max_[V0,V1] sigma' 2**F_s (mean value
      theorem; in the worst case one node spacing times the maximal slope beta/4);
    * interpolated: |err| <= 1/2 (entries; a convex combination keeps it) + 1/2 (the
      half-up rounding of the interpolation term) + (V - V0)(V1 - V)/2 max_[V0,V1]
      |sigma''| 2**F_s (linear interpolation error).
    """
    fv, s = d.v_frac, d.v_bits - d.sigma_lut_bits
    lo = d.variables["potential"].fmt.min_int
    n0 = lo + (((x - lo) >> s) << s)
    v, v0, v1 = x * 2.0 ** -fv, n0 * 2.0 ** -fv, (n0 + (1 << s)) * 2.0 ** -fv
    scale = 2.0 ** d.sigma_frac
    if d.sigma_interp:
        return 1.0 + (v - v0) * (v1 - v) / 2 * max_curv(v0, v1) * scale
    return 0.5 + (v - v0) * max_slope(v0, v1) * scale


def _sigma_codes(d):
    """Every V code in chunks when V has <= 24 bits; for fxp32 (2**32 codes) every node,
    every code of the 16 bins around theta and the sigma'' extrema, and 2**20 random codes."""
    fmt = d.variables["potential"].fmt
    if d.v_bits <= 24:
        for start in range(fmt.min_int, fmt.max_int + 1, 1 << 21):
            yield np.arange(start, min(start + (1 << 21), fmt.max_int + 1), dtype=np.int64)
        return
    s = d.v_bits - d.sigma_lut_bits
    yield fmt.min_int + (np.arange(1 << d.sigma_lut_bits, dtype=np.int64) << s)
    for centre in (P.theta, P.theta - A_ROOT / P.beta, P.theta + A_ROOT / P.beta):
        c = int(centre * 2 ** d.v_frac)
        first = ((c - fmt.min_int) >> s) - 2
        for b in range(first, first + 5):
            yield fmt.min_int + (np.int64(b) << s) + np.arange(1 << s, dtype=np.int64)
    yield np.random.default_rng(1).integers(fmt.min_int, fmt.max_int + 1, 1 << 20)


def test_sigmoid_table_at_every_input_code(d):
    worst = 0.0
    n = 0
    for x in _sigma_codes(d):
        err = np.abs(stages.sigmoid(d, x) - sig(x * 2.0 ** -d.v_frac) * 2.0 ** d.sigma_frac)
        bound = sigma_bound(d, x)
        bad = err > bound + 1e-6
        assert not bad.any(), (d.cfg.name, x[bad][:5], err[bad][:5], bound[bad][:5])
        worst = max(worst, float(err.max()))
        n += x.size
    # the global bound: one node spacing times beta/4 (+1/2), or h^2/8 max|sigma''| (+1)
    h = 2.0 ** (d.v_bits - d.sigma_lut_bits - d.v_frac)
    glob = (1.0 + h * h / 8 * P.beta ** 2 / (6 * math.sqrt(3)) * 2 ** d.sigma_frac if d.sigma_interp
            else 0.5 + h * P.beta / 4 * 2 ** d.sigma_frac)
    assert worst <= glob
    # not vacuous: the realized error uses a good part of the global bound
    assert worst >= 0.25 * glob, (d.cfg.name, worst, glob)
    # the numba twin, on the codes of the steepest bins
    c = J.pack(d)
    s = d.v_bits - d.sigma_lut_bits
    x = (int(P.theta * 2 ** d.v_frac) + np.arange(-3 << s, 3 << s, max(1, (1 << s) // 64))).astype(np.int64)
    got = np.array([J.sigmoid_one(v, d.sigma_lut, c) for v in x])
    err = np.abs(got - sig(x * 2.0 ** -d.v_frac) * 2.0 ** d.sigma_frac)
    assert np.all(err <= sigma_bound(d, x) + 1e-6), d.cfg.name


# ============================================================================ error
def _error_bound(d, sigma):
    """e = y - phi_max dt sigma: |err| <= rho(half_up) + sigma |phidt_q - phi_max dt| 2**F_e
    <= rho + sigma 2**(F_e - phidt_shift - 1)."""
    return (rho("half_up", d.sigma_frac + d.phidt_shift - d.err_frac)
            + sigma * 2.0 ** -d.sigma_frac * 2.0 ** (d.err_frac - d.phidt_shift - 1))


def test_error_stage(d):
    g = np.random.default_rng(2)
    sigma = np.concatenate([[0, 1 << d.sigma_frac], g.integers(0, (1 << d.sigma_frac) + 1, 20_000)])
    y = g.integers(0, 2, sigma.size)
    e = stages.error(d, sigma, y)
    exact = (y - P.phi_max * P.dt * sigma * 2.0 ** -d.sigma_frac) * 2.0 ** d.err_frac
    err = np.abs(e - exact)
    assert np.all(err <= _error_bound(d, sigma) + 1e-9), (d.cfg.name, err.max())
    c = J.pack(d)
    for j in range(0, sigma.size, 97):
        assert J.error_one(sigma[j], y[j], c) == e[j]


# ============================================================================ post factor
def _post_states(d, n=4000):
    g = np.random.default_rng(3)
    gmax = d.variables["gamma_s"].fmt.max_int
    gamma = g.integers(0, gmax + 1, n)
    sigma = g.integers(0, (1 << d.sigma_frac) + 1, n)
    y = g.integers(0, 2, n)
    err = stages.error(d, sigma, y)
    return gamma, sigma, err


def test_post_factor(d):
    """P = eta gamma_s (1 - sigma) e.  With a = gamma (1 - sigma) rounded half up at
    POST_A_FRAC (<= 2**-(A+1)), b = a e rounded half up at POST_B_FRAC (<= 2**-(B+1)) and
    eta_q = eta_mant 2**-eta_shift (|eta_q - eta| <= 2**-(eta_shift+1)):

        |P - P_float| <= 2**F_P [ |eta_q - eta| |gamma (1-sigma) e|
                                  + eta_q (|e| 2**-(A+1) + 2**-(B+1)) ] + rho(post.rounding)

    then saturated to post's format (1-Lipschitz: the bound holds against the clipped float).
    """
    gamma, sigma, err = _post_states(d)
    fg, fs, fe, fp = d.gamma_frac, d.sigma_frac, d.err_frac, d.post_frac
    draw = stages.Draw(SEED, STEP)
    idx = np.arange(gamma.size)
    p, _ = stages.post_factor(d, gamma[None], sigma[None], err[None], draw, idx[None])
    p = p[0]
    g_r, s_r, e_r = gamma * 2.0 ** -fg, sigma * 2.0 ** -fs, err * 2.0 ** -fe
    eta = ETA_CODE["approx"]
    eta_q = d.eta_mant * 2.0 ** -d.eta_shift
    fmt = d.variables["post"].fmt
    exact = np.clip(eta * g_r * (1 - s_r) * e_r * 2.0 ** fp, fmt.min_int, fmt.max_int)
    ra = rho("half_up", fg + fs - POST_A_FRAC) * 2.0 ** -POST_A_FRAC
    rb = rho("half_up", POST_A_FRAC + fe - POST_B_FRAC) * 2.0 ** -POST_B_FRAC
    bound = (2.0 ** fp * (abs(eta_q - eta) * np.abs(g_r * (1 - s_r) * e_r)
                          + eta_q * (np.abs(e_r) * ra + rb))
             + rho(d.post_rounding, POST_B_FRAC + d.eta_shift - fp))
    # the two intermediates are clipped to what int64 products can hold (|a| <= 2**(61 - F_e)
    # at POST_A_FRAC, |b| <= 2**(61 - mant_bits) at POST_B_FRAC), counted as post saturation;
    # those states (fxp32: gamma (1 - sigma) > 128 with gamma_s up to 256) are left out here
    lim_a = 2.0 ** (61 - fe - POST_A_FRAC)
    lim_b = 2.0 ** (62 - max(d.mant_bits, 1) - 1 - POST_B_FRAC)
    inside = (g_r * (1 - s_r) < lim_a - 1e-6) & (np.abs(g_r * (1 - s_r) * e_r) < lim_b - 1e-6)
    assert inside.mean() > 0.4
    err_lsb = np.abs(p - exact)[inside]
    bound = bound[inside]
    assert np.all(err_lsb <= bound + 1e-6), (d.cfg.name, err_lsb.max(), bound[np.argmax(err_lsb - bound)])
    assert np.any(exact[inside] != np.round(exact[inside]))   # not only rails
    c, pre = J.pack(d), _prefix("post")
    for j in range(0, gamma.size, 37):
        assert J.post_factor_one(gamma[j], sigma[j], err[j], c, pre, idx[j])[0] == p[j]


# ============================================================================ bracket
def _bracket_states(d, B=4, M=3):
    g = np.random.default_rng(4)
    N = RATES.size
    xmax = min(d.variables["usp"].fmt.max_int, int(400 * 2 ** d.usp_frac))      # |x| <= 400 /s
    x = g.integers(-xmax // 4, xmax, (B, N))
    # |c_w V| stays inside the bracket format, so c_w V never clips (|V| <= 30 mV)
    v = g.integers(-30 << d.v_frac, 30 << d.v_frac, (B, M))
    wfmt = d.variables["weights"].fmt
    w = g.integers(wfmt.min_int, wfmt.max_int + 1, (B, M, N))
    return x, v, w


def _idx(B, M, N):
    t = np.arange(B)[:, None] << 32
    return t + np.arange(N), t + np.arange(M), t[:, :, None] + np.arange(M * N).reshape(1, M, N)


def test_bracket(d):
    """B_i = c_eps x_i / r_i - c_eps c_u + c_w V w_i.  Sites: homo (shift F_x + homo_shift -
    F_B), cu_q (nearest, 1/2), c_w V (F_V + cw_shift - F_B), het (F_w); constants
    c_eps / r_i (shared exponent) and c_w off by <= half their mantissa LSB:

        |B - B_float| <= rho_homo + 1/2 + rho_cwv |w| + rho_het
                         + |x| 2**(F_B - homo_shift - 1) + |V w| 2**(F_B - cw_shift - 1)

    (|w| real, <= 1 here), then the bracket clip (1-Lipschitz)."""
    x, v, w = _bracket_states(d)
    B, M, N = w.shape
    ia, im, isy = _idx(B, M, N)
    br, _ = stages.bracket(d, x, v, w, stages.Draw(SEED, STEP), ia, im, isy)
    fx, fv, fw, fb = d.usp_frac, d.v_frac, d.w_frac, d.bracket_frac
    x_r, v_r, w_r = x * 2.0 ** -fx, v * 2.0 ** -fv, w * 2.0 ** -fw
    ce = c_eps(P)
    exact = ((ce / RATES * x_r)[:, None, :] - ce * P.c_u + P.c_w * v_r[:, :, None] * w_r) * 2.0 ** fb
    fmt = d.variables["bracket"].fmt
    exact = np.clip(exact, fmt.min_int, fmt.max_int)
    m = d.bracket_rounding
    bound = (rho(m, fx + d.homo_shift - fb) + 0.5 + rho(m, fv + d.cw_shift - fb) * np.abs(w_r)
             + rho(m, fw)
             + (np.abs(x_r) * 2.0 ** (fb - d.homo_shift - 1))[:, None, :]
             + np.abs(v_r[:, :, None] * w_r) * 2.0 ** (fb - d.cw_shift - 1))
    err = np.abs(br - exact)
    assert np.all(err <= bound + 1e-6), (d.cfg.name, err.max(), float(bound.max()))
    # the heterosynaptic term matters at this resolution (its sign would break the bound)
    assert np.abs(P.c_w * v_r[:, :, None] * w_r).max() * 2 ** fb > 4 * bound.max()
    c = J.pack(d)
    for b in range(B):
        homo, tmp = np.zeros(N, np.int64), np.zeros(N, np.int64)
        J.bracket_homo_row(homo, x[b], d.homo_mant, tmp, c, _prefix("homo"), np.int64(b) << 32)
        for j in range(M):
            cwv, _ = J.bracket_cwv_one(v[b, j], c, _prefix("cw_v"), (np.int64(b) << 32) + j)
            row = np.zeros(N, np.int64)
            J.bracket_row(row, homo, cwv, w[b, j], c, _prefix("hetero"), (np.int64(b) << 32) + j * N)
            assert np.all(np.abs(row - exact[b, j]) <= bound[b, j] + 1e-6), (d.cfg.name, b, j)


# ============================================================================ update
def test_update(d):
    """acc <- acc + round(P B) on the accumulator grid (F_w + extra): one rounding site,
    |dw - P B 2**(F_w + extra)| <= rho(weights.rounding), then the accumulator clip."""
    g = np.random.default_rng(5)
    B, M, N = 4, 3, RATES.size
    pf, bf = d.variables["post"].fmt, d.variables["bracket"].fmt
    post = g.integers(pf.min_int, pf.max_int + 1, (B, M)) >> g.integers(0, 12, (B, M))
    br = g.integers(bf.min_int, bf.max_int + 1, (B, M, N)) >> g.integers(0, 8, (B, M, N))
    af = d.variables["weights"].acc_fmt
    acc = g.integers(af.min_int, af.max_int + 1, (B, M, N))
    acc[0, 0, :2] = af.max_int, af.min_int
    _, _, isy = _idx(B, M, N)
    new, _, _ = stages.update(d, acc, post, br, stages.Draw(SEED, STEP), isy)
    sh = d.post_frac + d.bracket_frac - d.w_frac - d.w_extra
    dw_exact = post[:, :, None].astype(np.float64) * br * 2.0 ** -sh
    exact = np.clip(acc + dw_exact, af.min_int, af.max_int)
    err = np.abs(new - exact)
    assert np.all(err <= rho(d.w_rounding, sh) + 1e-9), (d.cfg.name, err.max())
    c = J.pack(d)
    for b in range(B):
        for j in range(M):
            a = acc[b, j].copy()
            J.update_row(a, post[b, j], br[b, j], np.zeros(N, np.int64), np.zeros(N, np.int64), c,
                         _prefix("weights"), (np.int64(b) << 32) + j * N)
            np.testing.assert_array_equal(a, new[b, j])


# ============================================================================ learning neuron
@pytest.fixture(scope="module")
def le():
    task = fig3_task(n_trials=2, N=32, seed=0)
    return learning.design_for_config(load("loihi2"), task, ETA_CODE["approx"])


def test_learning_neuron_sigma_at_every_code(le):
    """The learning neuron's table (nodes every 2**-node_frac mV over [-span, span), linear
    interpolation, entries half up, the interpolation term half up) at each of V's 2**16
    codes: within 1 + (V - V0)(V1 - V)/2 max|sigma''| 2**F_s inside the span; outside, V is
    clipped to the span, adding |sigma(V) - sigma(V_clipped)|."""
    nf = le.neuron
    x = np.arange(-(1 << (nf.v_bits - 1)), 1 << (nf.v_bits - 1), dtype=np.int64)
    got = learning.sigma_lookup(le, x)
    span = nf.sigma_span_mv << nf.v_frac
    xc = np.clip(x, -span, span - 1)
    s = nf.v_frac - nf.sigma_node_frac
    n0 = -span + (((xc + span) >> s) << s)
    v, vc = x * 2.0 ** -nf.v_frac, xc * 2.0 ** -nf.v_frac
    v0, v1 = n0 * 2.0 ** -nf.v_frac, (n0 + (1 << s)) * 2.0 ** -nf.v_frac
    sc = 2.0 ** nf.sigma_frac
    bound = 1 + (vc - v0) * (v1 - vc) / 2 * max_curv(v0, v1) * sc + np.abs(sig(v) - sig(vc)) * sc
    err = np.abs(got - sig(v) * sc)
    assert np.all(err <= bound + 1e-6), err.max()
    assert err.max() > 0.5                         # the curvature term is visible (4.4 LSB max)


def test_learning_neuron_error_and_event_probability(le):
    """One neuron step from random filters and gamma_s: the error is
    y - phidt_q sigma (bound as the datapath's), and the probability
    p = k gamma (1 - sigma) |e| with k = eta / E_q:  g1 = hu(gamma (1 - sigma)) at 2**-24,
    g2 = hu(g1 |e|) at 2**-24, p = hu(g2 k_q) at 2**-24, |k_q - k| <= 2**-(k_shift + 1):

        |p - p_float| <= 2**24 |k_q - k| gamma (1-sigma) |e| + k_q (|e| + 1) / 2 + 1/2  (LSB)

    capped at 1 (1-Lipschitz)."""
    nf = le.neuron
    g = np.random.default_rng(6)
    B, M = 64, 2
    st = learning.neuron_init(le, np.zeros((B, M, le.n_afferents), np.int64))
    st.a_m = g.integers(-2 ** 16, 2 ** 16, (B, M))
    st.a_s = st.a_m + g.integers(-2 ** 12, 2 ** 12, (B, M))
    st.gamma = g.integers(0, 2 ** 20, (B, M))
    gamma = st.gamma.copy()
    y = g.integers(0, 2, (B, M))
    idx = (np.arange(B)[:, None] << 32) | np.arange(M)
    bap, y1, _, _ = learning.neuron_step(le, st, np.zeros((B, M), np.int64), y, 5, SEED, idx)
    fs, fe, fp = nf.sigma_frac, nf.error_frac, nf.prob_frac
    s_r = st.sigma * 2.0 ** -fs
    e_exact = (y - P.phi_max * P.dt * s_r) * 2.0 ** fe
    be = (rho("half_up", fs + le.phidt_shift - fe)
          + s_r * 2.0 ** (fe - le.phidt_shift - 1))
    assert np.all(np.abs(st.err - e_exact) <= be + 1e-9)
    e_r = st.err * 2.0 ** -fe
    k = le.eta / le.e_q
    k_q = le.k_mant * 2.0 ** -le.k_shift
    g_r = gamma * 2.0 ** -nf.gamma_frac
    p_exact = k * g_r * (1 - s_r) * np.abs(e_r) * 2.0 ** fp
    if le.encoding == "events":                # an event probability: capped at 1
        p_exact = np.minimum(p_exact, 2.0 ** fp)
    bp = 2.0 ** fp * abs(k_q - k) * g_r * (1 - s_r) * np.abs(e_r) + k_q * (np.abs(e_r) + 1) / 2 + 0.5
    assert np.all(np.abs(st.p - p_exact) <= bp + 1e-6), np.abs(st.p - p_exact).max()
    assert np.any((st.p > 0) & (st.p < 1 << fp))
    if le.encoding == "graded":
        # the level sent plus the carry is the amount, to within one unit (the stochastic
        # rounding); a carry is left only at the top level, with the amount's sign
        unit = np.where(e_r > 0, le.unit_ratio, 1) * 2.0 ** fp
        lev = y1 // le.y_unit
        sent = lev * unit + np.abs(st.carry)
        assert np.all(np.abs(sent - st.p) < unit), np.abs(sent - st.p).max()
        assert np.all((st.carry == 0) | (lev == le.levels))
        assert np.all(np.sign(st.carry) * np.sign(e_r) >= 0)
        assert np.any(st.carry != 0) and np.any((lev > 0) & (lev < le.levels))
        assert np.array_equal(bap, ((e_r > 0) & (lev > 0)).astype(np.int64))
