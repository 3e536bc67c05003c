"""Discretization against math.

Every integer that ``emulator.discretize`` (fixed datapath) and
``emulator.learning.design`` (learning engine) derive from float parameters is recomputed
here from its closed form, written out independently, and must be equal; the realized
error of each is printed (``pytest -s``) and asserted within its format's bound:

* a decay ``round(exp(-dt/tau) 2**F)``: |realized - exp(-dt/tau)| <= 2**-(F+1);
* a mantissa constant ``c ~ mant 2**-shift`` with ``2**(mb-1) <= |mant| < 2**mb``,
  ``mant = round(c 2**shift)``: absolute error <= 2**-(shift+1), so relative <= 2**-mb;
* a block of mantissas sharing the exponent of the largest: each within 2**-(shift+1);
* a fixed-point scale ``round(c 2**F)``: within 2**-(F+1);
* table entries ``round(f(node) 2**F)``: within 1/2 LSB of f at the node.

"round" is round-half-up (floor(x + 1/2)); a decay rounded with floor instead is one LSB
low whenever frac(exp(-dt/tau) 2**F) >= 1/2 -- on fxp16 and fxp32 for the default
constants, and on every config for some of the random time constants checked below.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from emulator import learning
from emulator.discretize import RATE_FRAC, discretize
from emulator.hwconfig import load
from emulator.params import NeuronParams
from emulator.reference import ETA_CODE
from emulator.task import fig3_task

FIXED = ("loihi2_ideal", "fxp16", "fxp32", "loihi1")
RATES = np.array([10.0] * 10 + [50.0] * 10 + [0.0, 3.3, 77.7])


def rnd(x: float) -> int:
    """Round half up (x >= 0)."""
    return int(math.floor(x + 0.5))


def c_eps(p: NeuronParams) -> float:
    """1 / int eps^2 = 1 / (s^2 (tau_m/2 - 2 tau_m tau_s / (tau_m + tau_s) + tau_s/2))."""
    tm, ts = p.tau_m, p.tau_s
    return 1.0 / ((1.0 / (tm - ts)) ** 2 * (tm / 2 - 2 * tm * ts / (tm + ts) + ts / 2))


def mantissa(c: float, mb: int) -> tuple[int, int]:
    """Closed form of a mantissa constant: the largest shift with |mant| < 2**mb,
    mant = round(|c| 2**shift) (a carry to 2**mb halves it and drops the shift by one)."""
    if c == 0:
        return 0, 0
    e = math.floor(math.log2(abs(c)))              # 2**e <= |c| < 2**(e+1)
    if 2.0 ** e > abs(c):
        e -= 1
    elif 2.0 ** (e + 1) <= abs(c):
        e += 1
    shift = mb - 1 - e
    m = rnd(abs(c) * 2.0 ** shift)
    if m == 2 ** mb:
        m, shift = 2 ** (mb - 1), shift - 1
    return int(math.copysign(m, c)), shift


ROWS: list[tuple] = []


def check_mantissa(name, c, mant, shift, mb, record=True):
    assert (mant, shift) == mantissa(c, mb), (name, c, (mant, shift), mantissa(c, mb))
    real = mant * 2.0 ** -shift
    assert abs(real - c) <= 2.0 ** -(shift + 1) * (1 + 1e-12), name
    assert 2 ** (mb - 1) <= abs(mant) < 2 ** mb, name
    rel = abs(real / c - 1)
    assert rel <= 2.0 ** -mb, name
    if record:
        ROWS.append((name, c, real, rel, 2.0 ** -mb))


def check_scale(name, c, q, frac):
    assert q == rnd(c * 2.0 ** frac), (name, c, q, rnd(c * 2.0 ** frac))
    real = q * 2.0 ** -frac
    assert abs(real - c) <= 2.0 ** -(frac + 1), name
    ROWS.append((name, c, real, abs(real / c - 1) if c else 0.0, 2.0 ** -(frac + 1) / c if c else 0))


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    print("\nconstant                         float               realized            "
          "rel. error  bound")
    for name, c, real, rel, bound in ROWS:
        print(f"{name:32s} {c:<19.12g} {real:<19.12g} {rel:9.2e}  {bound:9.2e}")


def sigmoid(p, v):
    return 1.0 / (1.0 + math.exp(-p.beta * (v - p.theta)))


@pytest.mark.parametrize("name", FIXED)
def test_fixed_configs_constants(name):
    cfg = load(name)
    p = NeuronParams()
    eta = ETA_CODE["approx"]
    d = discretize(cfg, p, RATES, eta)
    mb = cfg["constants"]["mant_bits"]
    F = cfg["traces"]["decay_frac"]
    check_scale(f"{name} decay_m", math.exp(-p.dt / p.tau_m), d.decay_m, F)
    check_scale(f"{name} decay_s", math.exp(-p.dt / p.tau_s), d.decay_s, F)
    ce = c_eps(p)
    check_mantissa(f"{name} 1/(tau_m - tau_s)", 1.0 / (p.tau_m - p.tau_s), d.usp_mant, d.usp_shift, mb)
    check_mantissa(f"{name} c_w", p.c_w, d.cw_mant, d.cw_shift, mb)
    check_mantissa(f"{name} phi_max dt", p.phi_max * p.dt, d.phidt_mant, d.phidt_shift, mb)
    check_mantissa(f"{name} eta", eta, d.eta_mant, d.eta_shift, mb)
    check_mantissa(f"{name} 1/c_eps", 1.0 / ce, d.inv_ceps_mant, d.inv_ceps_shift, mb)
    check_scale(f"{name} c_eps c_u", ce * p.c_u, d.cu_q, cfg["bracket"]["frac"])
    # c_eps / r_i: one shared exponent, that of the largest value
    homo = [ce / r if r > 0 else 0.0 for r in RATES]
    _, shift = mantissa(max(homo), mb)
    assert d.homo_shift == shift
    assert d.homo_mant.tolist() == [rnd(h * 2.0 ** shift) for h in homo]
    worst = max(abs(m * 2.0 ** -shift / h - 1) for m, h in zip(d.homo_mant, homo) if h)
    assert worst <= 2.0 ** -(shift + 1) / min(h for h in homo if h)
    hmin = min(h for h in homo if h)
    ROWS.append((f"{name} c_eps/r_i, smallest", hmin, rnd(hmin * 2.0 ** shift) * 2.0 ** -shift,
                 worst, 2.0 ** -(shift + 1) / hmin))
    assert d.rates_q.tolist() == [rnd(r * 2 ** RATE_FRAC) for r in RATES]


@pytest.mark.parametrize("name", FIXED)
def test_fixed_configs_sigma_table_nodes(name):
    """Every entry of the sigmoid table: round(sigma(node) 2**F_s), nodes every
    2**(bits - lut_bits) codes from V's lowest code, the guard node one LSB past the top."""
    cfg = load(name)
    p = NeuronParams()
    d = discretize(cfg, p, RATES, ETA_CODE["approx"])
    vb, vf = cfg["potential"]["bits"], cfg["potential"]["frac"]
    k, fs = cfg["sigmoid"]["lut_bits"], cfg["sigmoid"]["frac"]
    nodes = [(-(2 ** (vb - 1)) + (j << (vb - k))) * 2.0 ** -vf for j in range(2 ** k + 1)]
    want = [rnd(sigmoid(p, v) * 2 ** fs) for v in nodes]
    assert d.sigma_lut.tolist() == want


def _gamma_exact(p, m, v):
    """1 / E[phi_max beta^2 s (1 - s)^2], V ~ N(m, v): trapezoid on 20 001 points over +-12 sd."""
    z = np.linspace(-12.0, 12.0, 20_001)
    w = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) * (z[1] - z[0])
    V = m + math.sqrt(v) * z
    s = 1.0 / (1.0 + np.exp(-p.beta * (V - p.theta)))
    return 1.0 / float(np.sum(p.phi_max * p.beta ** 2 * s * (1 - s) ** 2 * w))


@pytest.mark.parametrize("name", FIXED)
def test_fixed_configs_gamma_table_sample(name):
    """64 entries of the gamma_s table (m nodes M_LO + i 64/2**mb mV, v nodes j 64/2**vb mV^2,
    v = 0 taken as 1e-6): round(min(gamma_s, top) 2**F_g), within 1/2 LSB (+1e-9 relative
    for the two quadratures)."""
    cfg = load(name)
    p = NeuronParams()
    d = discretize(cfg, p, RATES, ETA_CODE["approx"])
    gm = cfg["gamma_s"]
    top = (2 ** gm["bits"] - 1) / 2.0 ** gm["frac"]
    g = np.random.default_rng(0)
    for i, j in zip(g.integers(0, 2 ** gm["m_lut_bits"], 64), g.integers(0, 2 ** gm["v_lut_bits"], 64)):
        m = -32.0 + i * 64.0 / 2 ** gm["m_lut_bits"]
        v = max(j * 64.0 / 2 ** gm["v_lut_bits"], 1e-6)
        gam = min(_gamma_exact(p, m, v), top) * 2.0 ** gm["frac"]
        assert abs(d.gamma_lut[i, j] - gam) <= 0.5 + 1e-9 * gam, (name, i, j, d.gamma_lut[i, j], gam)


@pytest.mark.parametrize("name", FIXED)
def test_decays_round_to_nearest_for_any_time_constant(name):
    """Random time constants (the default ones leave frac(exp(-dt/tau) 2**12) < 1/2 on the
    12-bit configs, where floor and round agree): every decay is the nearest integer."""
    cfg = load(name).with_overrides(**{"gamma_s.m_lut_bits": 2, "gamma_s.v_lut_bits": 2})
    F = cfg["traces"]["decay_frac"]
    g = np.random.default_rng(11)
    n_frac_high = 0
    for _ in range(12):
        tau_m = float(g.uniform(0.004, 0.04))
        tau_s = float(g.uniform(0.001, 0.9 * tau_m))
        p = NeuronParams(tau_m=tau_m, tau_s=tau_s)
        d = discretize(cfg, p, RATES, ETA_CODE["approx"])
        for tau, q in ((tau_m, d.decay_m), (tau_s, d.decay_s)):
            x = math.exp(-p.dt / tau) * 2.0 ** F
            assert q == rnd(x), (name, tau, q, x)
            n_frac_high += x % 1 >= 0.5
        check_mantissa(f"{name} 1/(tau_m - tau_s), random", 1 / (tau_m - tau_s), d.usp_mant,
                       d.usp_shift, cfg["constants"]["mant_bits"], record=False)
    assert n_frac_high >= 6          # floor would differ on these


# ============================================================================ learning engine
@pytest.fixture(scope="module")
def le_task():
    return fig3_task(n_trials=2, N=32, seed=0)


@pytest.mark.parametrize("config", ["loihi2", "loihi2_events"])
@pytest.mark.parametrize("eta", [ETA_CODE["approx"], 2.2e-3, 5e-2])
def test_learning_engine_design_integers(le_task, eta, config):
    """The learning-engine designs' integers against their closed forms
    (docs/learning_engine.md, "The constants, derived" and "The learning neuron"), for the
    graded coding (``loihi2``) and the event coding (``loihi2_events``)."""
    cfg = load(config)
    d = learning.design_for_config(cfg, le_task, eta)
    p, nf, mp = d.params, d.neuron, d.mapping
    mb = nf.mant_bits
    ce = c_eps(p)
    s = 1.0 / (p.tau_m - p.tau_s)
    # weight grid: floor(log2(128 / max|w|)) over initial and target weights
    wmax = max(np.abs(le_task.w_init).max(), np.abs(le_task.w_target).max())
    assert d.w_frac == math.floor(math.log2(128.0 / wmax))
    L = 2.0 ** -d.w_frac
    h = d.hidden_bits
    if cfg["mapping"]["hidden_bits"] == "auto":
        # the most hidden bits whose tag_2 holds the largest step of either sign: this h
        # fits (residual 2**h + room below + room above <= 255) and h + 1 does not
        tb = d.info["tag_budget"]
        assert h == 0 or tb["residual_units"] + tb["down_units"] + tb["up_units"] <= 255
        if h < 6:
            up = learning.design_for_config(
                cfg.with_overrides(**{"mapping.hidden_bits": h + 1}), le_task, eta)
            assert not up.info["tag_budget"]["fits"], (h, up.info["tag_budget"])
        assert tb["down_units"] <= d.d_offset - 2 ** h or not tb["fits"]
    if config == "loihi2_events":
        # event constant: smallest 64 * 2**j (j >= -h) with E_q = c_ev L / (128 c c_u) >= eta g_cap
        j = -h
        while 64 * 2.0 ** j * L / (128 * ce * p.c_u) < eta * nf.g_cap * (1 - 1e-12):
            j += 1
        assert d.encoding == "events" and d.c_ev == round(64 * 2.0 ** j)
        levels = 1
    else:
        # level constant: the largest 2**j from one tag_2 unit (c_ev 2**h = 128) down to the
        # smallest the engine represents (c_ev 2**h = y_unit = 32) whose steps fit tag_2
        assert d.encoding == "graded" and (d.levels, d.unit_ratio, d.y_unit) == (3, 3, 32)
        k = math.log2(d.c_ev * 2 ** h)
        assert k == round(k) and 5 <= k <= 7, d.c_ev
        if k < 7:
            bigger = learning.design_for_config(cfg.with_overrides(**{
                "mapping.hidden_bits": h, "mapping.c_ev": 2 * d.c_ev}), le_task, eta)
            assert not bigger.info["tag_budget"]["fits"]
        levels = 3
    e_q = d.c_ev * L / (128 * ce * p.c_u)
    assert abs(d.e_q / e_q - 1) < 1e-12
    # the V step: y3 - 64 carries (graded: L) V / v_lsb, and the recorded range is the
    # realized one, 64 steps per sign at the top level ...
    assert abs(mp.v_range_mv - 64 * d.v_lsb / levels) < 1e-9 * mp.v_range_mv
    assert abs(d.info["v_range_mv"] - mp.v_range_mv) < 1e-12
    # ... each heterosynaptic product's coefficient is +-(its multiple) 2**h het_unit v_lsb
    het_unit = d.c_ev * L * p.c_w / (ce * p.c_u)          # accumulator units per (mV W)
    het = [q for q in (d.dd_products or d.products) if any(v == "y3" for v, _ in q.factors)]
    assert len(het) == 2
    mults = sorted(abs(q.coef) * (64 if any(v == "y1" for v, _ in q.factors) else 1)
                   / (2 ** h * het_unit * d.v_lsb) for q in het)
    assert np.allclose(mults, [1, 1] if levels == 1 else [1, 4]), mults
    # ... it covers the asked-for range, and it is the finest the engine allows: within the
    # m * 2**j grid of scales (a step of at most 2x), or the smallest het product sits at
    # Lava's smallest scale (mantissa 1, exponent -7)
    asked = learning.rule_design.auto_v_range(le_task)[0]
    assert mp.v_range_mv >= asked * (1 - 1e-9)
    assert (mp.v_range_mv < 2 * asked
            or min((abs(q.mant), q.exp) for q in het) == (1, -7)), (mp.v_range_mv, het)
    # time constants in steps, decays of the neuron's filters
    assert (d.x1_tau, d.x2_tau) == (round(p.tau_m / p.dt), round(p.tau_s / p.dt))
    check_scale(f"LE eta={eta:g} d_m", math.exp(-p.dt / p.tau_m), d.dm, nf.decay_frac)
    check_scale(f"LE eta={eta:g} d_s", math.exp(-p.dt / p.tau_s), d.ds, nf.decay_frac)
    check_mantissa(f"LE eta={eta:g} L s", s * L, d.vk_mant, d.vk_shift, mb)
    check_mantissa(f"LE eta={eta:g} phi_max dt", p.phi_max * p.dt, d.phidt_mant, d.phidt_shift, mb)
    check_mantissa(f"LE eta={eta:g} 1/(phi_max beta^2)", 1.0 / (p.phi_max * p.beta ** 2),
                   d.ginv_mant, d.ginv_shift, mb)
    check_mantissa(f"LE eta={eta:g} eta/E_q", eta / e_q, d.k_mant, d.k_shift, mb)
    # |e| eta / E_q (|e| <= 1) uses the most fractional bits one signed neuron word holds
    k_top = d.k_mant * 2.0 ** (d.ek_frac - d.k_shift)
    assert 2 ** (nf.word_bits - 2) <= k_top < 2 ** (nf.word_bits - 1), (d.ek_frac, k_top)
    check_mantissa(f"LE eta={eta:g} 1/v_lsb", 1.0 / d.v_lsb, d.vq_mant, d.vq_shift, mb)
    # tags t_i = step round(T / (r_i step)), T = c_ev s / (K_x c_u hc)
    hc = d.info["acc_per_t_x1"]
    T = d.c_ev * s / (mp.k_x * p.c_u * hc)
    assert abs(d.tag_scale / T - 1) < 1e-12
    step = d.tag_step
    assert d.tags.tolist() == [step * rnd(T / (r * step)) if r > 0 else 0 for r in d.rates]
    # sigma nodes every 2**-node_frac mV over [-span, span]
    n = 2 * nf.sigma_span_mv * 2 ** nf.sigma_node_frac + 1
    assert d.sigma_lut.tolist() == [
        rnd(sigmoid(p, -nf.sigma_span_mv + i * 2.0 ** -nf.sigma_node_frac) * 2 ** nf.sigma_frac)
        for i in range(n)]


def test_learning_engine_decays_for_any_time_constant(le_task):
    g = np.random.default_rng(12)
    cfg = load("loihi2")
    n_high = 0
    for _ in range(8):
        tm = int(g.integers(8, 60))
        ts = int(g.integers(1, tm))
        p = NeuronParams(tau_m=tm * 0.0005, tau_s=ts * 0.0005)
        d = learning.design_for_config(cfg, fig3_task(n_trials=1, N=8, seed=1, params=p), 1e-3)
        for tau, q in ((p.tau_m, d.dm), (p.tau_s, d.ds)):
            x = math.exp(-p.dt / tau) * 2.0 ** d.neuron.decay_frac
            assert q == rnd(x), (tau, q, x)
            n_high += x % 1 >= 0.5
    assert n_high >= 4


@pytest.mark.parametrize("rule", ["approx", "euclid"])
@pytest.mark.parametrize("config", ["loihi2", "loihi2_events"])
def test_one_step_of_the_rule_equals_its_closed_form(le_task, config, rule):
    """The rule strings, evaluated by the engine's applier on constructed factors (V = 0,
    so the heterosynaptic products vanish and every other floor is exact), give the update
    the coding promises, in accumulator units of tag_2 (2**h per weight accumulator unit):

    * a negative step of L units (y1 = y_unit L, no bap):  -L g (hc t (x1 - x2) - c_ev)
      (approx) or -L g c_ev (x1 - x2) (euclid);
    * a positive step (the bap; graded: the same y1 = y_unit L; events: one event): the same
      magnitude times unit_ratio (graded) or 1 (events), with the opposite sign.
    """
    from emulator.learning.lava_replica import apply_products
    cfg = load(config).with_overrides(**{"mapping.rule": rule})
    d = learning.design_for_config(cfg, le_task, ETA_CODE["approx"] if rule == "approx"
                                   else ETA_CODE["euclid"])
    g = 2 ** d.hidden_bits
    hc = d.info["acc_per_t_x1"]
    rng_ = np.random.default_rng(5)
    N = d.n_afferents
    # traces as they come (x2 <= x1), their difference within the design's tag budget
    x1 = rng_.integers(0, 100, N)
    x2 = np.maximum(x1 - rng_.integers(0, 16, N), 0)
    w = rng_.integers(-100, 100, N)
    acc0 = np.full(N, d.d_offset << d.engine.acc_shift)
    pos_prod = [p for p in d.dd_products if not (p.factors and p.factors[0][0] == "d")]
    levels = range(1, d.levels + 1) if d.encoding == "graded" else [1]
    for L in levels:
        y1 = d.y_unit * L
        unit = (hc * d.tags * (x1 - x2) - d.c_ev) if rule == "approx" else d.c_ev * (x1 - x2)
        want_neg = -L * g * unit
        want_pos = -want_neg * (d.unit_ratio if d.encoding == "graded" else 1)
        for bap, want in ((0, want_neg), (1, want_pos)):
            if d.encoding == "events":
                yv = {"y1": np.full((1, 1, 1), 0 if bap else 64), "y2": np.zeros((1, 1, 1)),
                      "y3": np.full((1, 1, 1), 64)}
            else:
                yv = {"y1": np.full((1, 1, 1), y1), "y2": np.zeros((1, 1, 1)),
                      "y3": np.full((1, 1, 1), 64)}
            acc = apply_products(pos_prod, acc0[None, None].copy(), w[None, None],
                                 d.tags[None, None], x1[None, None], x2[None, None],
                                 np.full((1, 1, 1), bap), yv, d=acc0[None, None] >> 7, u=1)
            np.testing.assert_array_equal(acc[0, 0] - acc0, np.asarray(want, np.int64),
                                          err_msg=f"{config} {rule} L={L} bap={bap}")
