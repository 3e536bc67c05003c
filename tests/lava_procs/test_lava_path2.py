"""Path 2 (Lava learning engine): LearningDense + Loihi3FLearningRule + NatGradLENeuron.

* The Lava run equals the emulator's learning-engine mode (``emulator.learning``)
  bit for bit: weights, traces, every neuron Var, counters, event counts.
* A rule string mis-scaled by one shift breaks that agreement (and is reproduced by the
  emulator when it is given the same mis-scaled rule), so the comparison has power.
* The pieces the emulator re-implements (rule compilation, the fixed-point product applier,
  trace decay, weight stochastic rounding, Lava's numpy random streams) are pinned against
  Lava's own classes without a runtime.
* Learning works on the teacher task: rate RMSE falls, close to float64 over the same time.

Every test that starts Lava has a timeout, so a deadlock fails instead of hanging, and
every Lava run stops its runtime in ``finally:`` (inside ``run_lava_le``).
"""
import numpy as np
import pytest

from emulator import learning as LE
from emulator.learning import lava_replica
from emulator import runner as R
from emulator.metrics import rate_rmse_hz, test_set
from emulator.reference import ETA_CODE_SCALED
from emulator.task import fig3_task

# Bit-exactness case: M = 2 neurons (per-neuron gating of y0 products), trial 3 of a task
# whose teacher fires ~12 Hz, and a large eta (1e-2) with small events (c_ev = 128) so that
# 2000 steps hold ~40 events, some with the event probability saturated at 1.
BIT_STEPS, BIT_SEED, BIT_TRIAL, BIT_ETA, BIT_C_EV = 2000, 5, 3, 1e-2, 128


@pytest.fixture(scope="module")
def bit_case():
    task = fig3_task(n_trials=4, N=20, M=2, seed=3)
    d = LE.design_for_task(task, BIT_ETA, c_ev=BIT_C_EV)
    emu = LE.run(task, BIT_STEPS, BIT_SEED, d, trials=[BIT_TRIAL])
    return task, d, emu


def _lava_rule(d, products=None):
    from lava.magma.core.learning.learning_rule import Loihi3FLearningRule
    prods = d.products if products is None else products
    return Loihi3FLearningRule(dw=LE.rule_string(prods), x1_impulse=d.k_x, x1_tau=d.x1_tau,
                               x2_impulse=d.k_x, x2_tau=d.x2_tau, t_epoch=1, rng_seed=1)


# ------------------------------------------------------------------ no runtime
def test_design_constants_of_the_fig3_task():
    task = fig3_task(n_trials=1, N=32, seed=0)
    d = LE.design_for_task(task, ETA_CODE_SCALED["approx"])
    assert d.w_frac == 12 and d.k_x == 16 and (d.x1_tau, d.x2_tau) == (20, 6)
    assert set(d.tags.tolist()) == {240, 48} and d.tag_step == 16        # exact products
    assert abs(d.info["homo_rel_err"] - 0.0025) < 1e-4                    # 240 vs 240.6
    assert d.rule == ("4*2^-5*y0*t*x1 - 4*2^-5*y0*t*x2 - 4*2^-2*y0 + 1*2^-7*y0*(y3-64)*w"
                      " - 4*2^-4*u0*t*x1*y1 + 4*2^-4*u0*t*x2*y1 + 2*2^-7*u0*y1"
                      " - 2*2^-7*u0*y1*(y3-64)*w")
    # one event's constant term is c_ev accumulator units (1 weight LSB), on both channels
    assert d.products[2].coef == -128 and d.products[6].coef * LE.Y_EVENT == 128
    # E_q: c_eps c_u E_q = c_ev * 2**-w_frac / 128
    p = task.params
    assert abs(p.c_eps * p.c_u * d.e_q - 2.0 ** -12) < 1e-15
    assert abs(d.v_lsb - 0.494) < 1e-3


def test_rule_string_is_what_lava_compiles(bit_case):
    from lava.magma.core.learning.constants import FACTOR_TO_WIDTH_DICT, W_ACCUMULATOR_U, W_S_MANT
    _, d, _ = bit_case
    lava = _lava_rule(d).active_product_series["dw"].products
    assert len(lava) == len(d.products)
    for ours, theirs in zip(d.products, lava):
        assert theirs.dependency == {"u0": "u", "y0": "y0"}[ours.dep]
        assert (theirs.s_mantissa, theirs.s_exp) == (ours.mant, ours.exp + 7)
        assert [(f.state_var, f.const or 0) for f in theirs.factors] == list(ours.factors)
        widths = sum(FACTOR_TO_WIDTH_DICT[f.state_var] for f in theirs.factors)
        assert ours.shift == max(0, widths + W_S_MANT - W_ACCUMULATOR_U)
        assert LE.product_bound(ours) < 2 ** 31                       # no int32 wrap in Lava


def test_product_applier_equals_lavas(bit_case):
    from lava.magma.core.learning.learning_rule_applier import LearningRuleApplierBitApprox
    _, d, _ = bit_case
    g = np.random.default_rng(0)
    m, n = 3, 20
    w = g.integers(-256, 256, (m, n))
    tags = np.broadcast_to(d.tags, (m, n)).copy()
    x1, x2 = g.integers(0, 128, (1, n)), g.integers(0, 128, (1, n))
    y0 = np.array([[True], [False], [True]])
    ys = {f"y{i}": g.integers(0, 128, (m, 1)) for i in (1, 2, 3)}
    ys["y1"][:] = [[64], [0], [63]]
    args = {"shape": (m, n), "x0": np.zeros((1, n), bool), "y0": y0, "u": 1, "weights": w,
            "tag_2": np.zeros((m, n), int), "tag_1": tags}
    for dep in ("u", "y0"):
        args[f"x1_{dep}"] = np.broadcast_to(x1, (m, n)) if dep == "y0" else x1
        args[f"x2_{dep}"] = np.broadcast_to(x2, (m, n)) if dep == "y0" else x2
        for name, v in ys.items():
            args[f"{name}_{dep}"] = v
    for products in (d.products, LE.mis_scaled(d, 3, 2).products):
        ps = _lava_rule(d, products).active_product_series["dw"]
        theirs = LearningRuleApplierBitApprox(ps).apply((w << 7).astype(np.int32), **args)
        ours = LE.apply_products(products, (w << 7)[None], w[None], tags[None], x1[None],
                                 x2[None], y0[None], {k: v[None] for k, v in ys.items()})
        np.testing.assert_array_equal(ours[0], theirs)


def test_trace_decay_weight_rounding_and_random_streams_equal_lavas():
    from lava.magma.core.learning.random import ConnVarRandom, TraceRandom
    from lava.magma.core.model.py.connection import LearningConnectionModelBitApproximate as C
    seeds = [LE.lava_trace_seed(7, t) for t in (0, 1)]
    rx, ry, rw = LE.LavaRandoms(seeds).next(50)
    for b, s in enumerate(seeds):
        for gen, r in ((TraceRandom(s, s + 1), rx[:, b]), (TraceRandom(s + 2, s + 3), ry[:, b])):
            got = []
            for _ in range(50):          # recv_traces advances twice per time step
                gen.advance()
                gen.advance()
                got.append(gen.random_trace_decay)
            np.testing.assert_array_equal(got, r)
    cv = ConnVarRandom()
    got = []
    for _ in range(50):                  # run_lrn advances once per epoch
        cv.advance()
        got.append(cv.random_stochastic_round)
    np.testing.assert_array_equal(got, rw)
    g = np.random.default_rng(1)
    traces = g.integers(0, 128, (2, 2, 40))
    taus = np.array([[20], [6]])
    for r in (0.0, 0.3, 0.9999):
        ours = lava_replica._decay(traces, taus, np.array([r, r]))
        for b in range(2):
            np.testing.assert_array_equal(ours[b], C._decay_trace(traces[b], 1, taus, r))
    acc = g.integers(-2 ** 15, 2 ** 15, 500)
    for r in (0.0, 0.5, 0.99):
        theirs = C._stochastic_round_synaptic_variable("weights", acc.astype(np.int32), r) >> 7
        ip = acc / 128
        ours = (np.floor(ip) + (r < ip % 1)).astype(np.int64)
        np.testing.assert_array_equal(ours, theirs)


def test_numba_kernel_equals_numpy_steps(bit_case):
    task, d, _ = bit_case
    a = LE.run(task, 600, 2, d, trials=[0, 3], record_every=200, backend="numpy")
    b = LE.run(task, 600, 2, d, trials=[0, 3], record_every=200, backend="numba")
    np.testing.assert_array_equal(a.w_int, b.w_int)
    np.testing.assert_array_equal(a.record_w, b.record_w)
    np.testing.assert_array_equal(a.x_traces, b.x_traces)
    np.testing.assert_array_equal(a.events, b.events)
    for f in ("a_m", "a_s", "hbar", "gamma", "v", "sigma", "err", "p", "counts"):
        np.testing.assert_array_equal(getattr(a.neuron, f), getattr(b.neuron, f), err_msg=f)


def test_every_products_scale_matters(bit_case):
    """The comparison sees an off-by-one shift in any single product (emulator only)."""
    task, d, emu = bit_case
    for i in range(len(d.products)):
        for delta in (-1, 1):
            try:
                bad = LE.mis_scaled(d, i, delta)
            except ValueError:          # exponent outside [-7, 8]: Lava could not compile it
                continue
            other = LE.run(task, BIT_STEPS, BIT_SEED, d, trials=[BIT_TRIAL],
                           products=bad.products)
            assert not np.array_equal(other.w_int, emu.w_int), (i, delta)


# ------------------------------------------------------------------ Lava runs
@pytest.mark.timeout(180)
def test_lava_equals_emulator_bit_for_bit(bit_case):
    from lava_procs.learning_engine import run_lava_le
    task, d, emu = bit_case
    res = run_lava_le(d, task, BIT_STEPS, BIT_SEED, trial=BIT_TRIAL)
    # the run is a real test: events on both channels, saturated probabilities, moved weights
    assert emu.events[0, :, 0].sum() >= 20 and emu.events[0, :, 1].sum() >= 10
    assert emu.counters["post_carry"] > 0           # probability beyond 1: carried
    w0 = LE.quantize_weights(d, task.w_init[BIT_TRIAL])
    assert np.abs(emu.w_int[0] - w0).max() >= 10
    np.testing.assert_array_equal(res["w_int"], emu.w_int[0])
    np.testing.assert_array_equal(res["x1"], emu.x_traces[0, 0])
    np.testing.assert_array_equal(res["x2"], emu.x_traces[0, 1])
    nv = res["neuron"]
    for f in ("a_m", "a_s", "hbar", "gamma", "v", "sigma", "err", "p", "carry"):
        np.testing.assert_array_equal(nv[f], getattr(emu.neuron, f)[0], err_msg=f)
    np.testing.assert_array_equal(nv["counts"], emu.neuron.counts)
    np.testing.assert_array_equal(nv["events"], emu.events[0])
    assert res["counters"] == emu.counters


#: Graded designs run bit for bit under Lava: the shipped loihi2 config, one more with
#: positive levels 7 E_n, 3 hidden bits, tag_2 offset 100 and 2-step epochs (levels gather
#: in the carry and go out on the epoch's last step), and the Euclidean rule.
GRADED = {
    "loihi2": {},
    "ratio7_h3_offset100_t2": {"mapping.unit_ratio": 7, "mapping.hidden_bits": 3,
                               "mapping.tag_offset": 100, "engine.t_epoch": 2},
    "euclid": {"mapping.rule": "euclid"},
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", list(GRADED))
def test_lava_equals_emulator_on_graded_designs(name):
    """2000 steps of trial 3 (N = 20, M = 2): weights, tag_2, traces, every neuron Var
    (carry included), the counters and the levels sent equal the emulator's, and the run
    carries excess levels and moves weights."""
    from emulator.hwconfig import load
    from lava_procs.learning_engine import run_lava_le
    task = fig3_task(n_trials=4, N=20, M=2, seed=3)
    cfg = load("loihi2").with_overrides(**GRADED[name])
    eta = BIT_ETA if cfg["mapping"]["rule"] == "approx" else 6e-5
    d = LE.design_for_config(cfg, task, eta)
    assert d.encoding == "graded"
    emu = LE.run(task, BIT_STEPS, BIT_SEED, d, trials=[BIT_TRIAL])
    res = run_lava_le(d, task, BIT_STEPS, BIT_SEED, trial=BIT_TRIAL)
    assert emu.events[0, :, 0].sum() >= 20 and emu.events[0, :, 1].sum() >= 10, emu.events
    # carries: the euclid design's top step exceeds its largest post factor, never
    assert emu.counters["post_carry"] > 0 or name == "euclid"
    w0 = LE.quantize_weights(d, task.w_init[BIT_TRIAL])
    assert np.abs(emu.w_int[0] - w0).max() >= 10
    np.testing.assert_array_equal(res["w_int"], emu.w_int[0])
    np.testing.assert_array_equal(res["tag_2"], emu.d_tag[0])
    np.testing.assert_array_equal(res["x1"], emu.x_traces[0, 0])
    np.testing.assert_array_equal(res["x2"], emu.x_traces[0, 1])
    nv = res["neuron"]
    for f in ("a_m", "a_s", "hbar", "gamma", "v", "sigma", "err", "p", "carry", "pend",
              "sent"):
        np.testing.assert_array_equal(nv[f], getattr(emu.neuron, f)[0], err_msg=f)
    np.testing.assert_array_equal(nv["events"], emu.events[0])
    assert res["counters"] == emu.counters


@pytest.mark.timeout(180)
def test_mis_scaled_rule_string_breaks_the_agreement(bit_case):
    """Lava runs the homosynaptic E+ product one shift too large: it no longer equals the
    emulator's correct rule, and it equals the emulator given the same mis-scaled rule."""
    from lava_procs.learning_engine import run_lava_le
    task, d, emu = bit_case
    bad = LE.mis_scaled(d, 0, +1)
    assert LE.rule_string(bad.products).startswith("4*2^-4*y0*t*x1")
    res = run_lava_le(d, task, BIT_STEPS, BIT_SEED, trial=BIT_TRIAL, products=bad.products)
    assert not np.array_equal(res["w_int"], emu.w_int[0])
    assert np.abs(res["w_int"] - emu.w_int[0]).max() >= 5
    other = LE.run(task, BIT_STEPS, BIT_SEED, d, trials=[BIT_TRIAL], products=bad.products)
    np.testing.assert_array_equal(res["w_int"], other.w_int[0])


# ------------------------------------------------------------------ learning
def test_learning_engine_mode_learns_like_float():
    """Fig 3 teacher task, N = 32, 4 trials, 40 s: the rate RMSE falls by more than 40 %
    and ends within 25 % of the float64 rule's on the same spikes."""
    task = fig3_task(n_trials=4, N=32, seed=0)
    eta = ETA_CODE_SCALED["approx"]
    steps = 80_000
    xt = test_set(task, seed=7)
    rmse = lambda w: float(rate_rmse_hz(w, task.w_target, xt, task.params).mean())  # noqa: E731
    d = LE.design_for_task(task, eta)
    le = LE.run(task, steps, 1, d)
    fl = R.run("float64", task, steps, 1, eta=eta)
    r0, r_le, r_fl = rmse(task.w_init), rmse(le.w_final), rmse(fl.w_final)
    assert r_le < 0.6 * r0, (r0, r_le, r_fl)
    assert r_le < 1.25 * r_fl, (r0, r_le, r_fl)
