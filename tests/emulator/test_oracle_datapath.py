"""The integer datapath against an independent oracle, every state field after every step.

``tests/tools/oracle_datapath.py`` is a scalar plain-Python-int implementation of one step written
from ``docs/datapath.md`` (*Formats*, *Step order*, *How gamma_s is obtained on chip*,
*Randomness*, *Exact integer arithmetic of one step*); it shares no code with ``emulator/`` or ``fixedpoint/`` and computes every
constant (decay factors, mantissas, sigmoid table, and the small gamma_s tables) itself from the
config YAML and the neuron's float parameters.  Here it runs side by side with the numpy step
(:func:`emulator.datapath.step`) and the fused numba kernel (:func:`emulator.kernels.run_fused`
one step at a time, and :func:`emulator.kernels.run_chunk` on constructed states), and every
field of the State -- traces, USP, accumulator, V, gamma_s, sigma, error, post factor, student
spikes, the eight counters and their first steps -- must agree exactly after every step.
"""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import oracle_datapath as O
from emulator import datapath, kernels
from emulator.discretize import discretize
from emulator.hwconfig import validate
from emulator.params import NeuronParams
from emulator.runner import record_arrays
from emulator.spikes import SpikeSource
from emulator.variables import COUNTER_INDEX

from datapath_cases import (CONSTRUCTED, ETA, ROUNDING_CASES, RUN_CASES, high_rate_task,
                            read_tree)

#: oracle counter name -> (variable, kind) of emulator.variables.COUNTERS
COUNTER_OF = {"traces": ("traces", "saturation"), "usp": ("usp", "saturation"),
              "potential": ("potential", "saturation"), "gamma_s": ("gamma_s", "saturation"),
              "post": ("post", "saturation"), "bracket": ("bracket", "saturation"),
              "weights_sat": ("weights", "saturation"),
              "weights_under": ("weights", "underflow")}
FIELDS = ("a_m", "a_s", "x", "acc", "v", "gamma", "sigma", "err", "post", "spikes")


def _oracle_counts(ost):
    counts = np.zeros(len(COUNTER_INDEX), np.int64)
    first = np.full(len(COUNTER_INDEX), -1, np.int64)
    for name, key in COUNTER_OF.items():
        counts[COUNTER_INDEX[key]] = ost["counts"][name]
        first[COUNTER_INDEX[key]] = ost["first"][name]
    return counts, first


def assert_same_state(ost, state, where: str):
    """Every field of the emulator State equals the oracle's (assert_array_equal)."""
    for f in FIELDS:
        assert_array_equal(getattr(state, f), np.array(ost[f], np.int64),
                           err_msg=f"{where}: field {f}")
    counts, first = _oracle_counts(ost)
    assert_array_equal(state.counts, counts, err_msg=f"{where}: counts")
    assert_array_equal(state.first, first, err_msg=f"{where}: first steps")
    assert state.step == ost["step"], where


def _oracle_for(tree, d, task):
    # the 64x64 and 32x32 gamma_s tables are rebuilt by the oracle; the 256x256 and
    # 1024x1024 ones are taken from the emulator and spot-checked below
    small = (1 << tree["gamma_s"]["m_lut_bits"]) * (1 << tree["gamma_s"]["v_lut_bits"]) <= 4096
    return O.Oracle(tree, task.params, task.rates, ETA, None if small else d.gamma_lut), small


def run_against_oracle(name, overrides, steps=200, seed=3):
    """docs/datapath.md *Step order* 1-6 on a task with spikes: ``steps`` steps, 2 trials,
    M = 2, N = 8; numpy step and fused numba kernel equal the oracle in every field after
    every step.  Returns (oracle, its final state, the teacher spikes, student spike count)."""
    tree = read_tree(name, **overrides)
    cfg = validate(tree, name)
    task = high_rate_task()
    trials = np.array([0, 1])
    d = discretize(cfg, task.params, task.rates, ETA)
    orc, _ = _oracle_for(tree, d, task)
    ost = orc.init(task.w_init, trials)
    st_np = datapath.init_state(d, task.w_init, trials)
    st_nb = datapath.init_state(d, task.w_init, trials)
    assert_same_state(ost, st_np, f"{name} init")
    X, Y = SpikeSource(task, seed, trials).next(steps)
    src_nb = SpikeSource(task, seed, trials)
    B, M, N = st_np.acc.shape
    rec = record_arrays(0, B, M, N)
    out_spk = np.zeros((B, M), np.int64)
    teach = np.zeros((B, M), np.int64)
    idx = datapath.Indices(trials, M, N)
    n_student = 0
    for k in range(steps):
        orc.step(ost, X[k], Y[k], seed)
        datapath.step(d, st_np, X[k], Y[k], seed, idx)
        kernels.run_fused(d, st_nb, src_nb, 1, seed, 0, rec, 0, out_spk, teach)
        assert_same_state(ost, st_np, f"{name} {overrides} numpy step {k}")
        assert_same_state(ost, st_nb, f"{name} {overrides} numba step {k}")
        n_student += int(np.sum(ost["spikes"]))
    assert_array_equal(teach, Y.sum(axis=0))
    return orc, ost, Y, n_student


@pytest.mark.parametrize("name, overrides", RUN_CASES,
                         ids=[c[0] + ("+variant" if c[1] else "") for c in RUN_CASES])
def test_oracle_equals_numpy_and_numba_every_step(name, overrides):
    """The run must contain teacher spikes, student spikes, nonzero updates and
    underflows."""
    orc, ost, Y, n_student = run_against_oracle(name, overrides)
    tree = read_tree(name, **overrides)
    acc0 = np.array(orc.init(high_rate_task().w_init, [0, 1])["acc"])
    assert Y.sum() >= 5 and n_student >= 5, (Y.sum(), n_student)
    assert np.any(np.array(ost["acc"]) != acc0)                    # updates happened
    if tree["weights"]["rounding"] == "stochastic":
        assert ost["counts"]["weights_under"] > 0


@pytest.mark.parametrize("name, overrides", ROUNDING_CASES, ids=list(O.ROUNDING_MODES))
def test_every_rounding_mode_every_step(name, overrides):
    """Each rounding mode at every site, every field after every step (numpy and numba);
    and the mode mattered: at every site some rounding left a remainder on which it
    differs from floor (floor and trunc: from half up), trunc differs from floor at every
    signed site (traces are unsigned, and the USP of this task stays >= 0), and the tie rule of
    half_even differs from half_up at the potential's 8 guard bits."""
    from emulator.hwconfig import ROUNDING_MODES
    assert set(O.ROUNDING_MODES) == set(ROUNDING_MODES)             # the schema's modes
    orc, ost, Y, n_student = run_against_oracle(name, overrides)
    mode = overrides["traces.rounding"]
    for site, st in orc.rounding.items():
        assert st["ops"] > 0, site
        other = "half_up" if mode in ("floor", "trunc") else "floor"
        assert st[other] > 0, (site, mode, st)
        if mode == "trunc" and site in ("potential", "bracket", "post", "weights"):
            assert st["floor"] > 0, (site, st)
    if mode in ("half_up", "half_even"):
        assert orc.rounding["potential"]["half_even" if mode == "half_up" else "half_up"] > 0
    # the sigmoid: V between table nodes in almost every lookup
    assert orc.lookups["interp_differs"] > orc.lookups["sigma"] // 2, orc.lookups
    assert Y.sum() >= 5 and n_student >= 5


# ----------------------------------------------------------------------------- constructed
def _constructed(name, overrides, params):
    """A state on the rails: traces at the top, USPs at full scale, weights at +-max, low and
    high input rates, a gamma_s lookup outside the table, and eta = 1 so the post factor
    saturates; five steps of constructed spikes."""
    tree = read_tree(name, **overrides)
    cfg = validate(tree, name)
    B, M, N = 2, 2, 8
    rates = np.array([5.0, 5.0, 5.0, 5.0, 600.0, 600.0, 600.0, 600.0])
    d = discretize(cfg, params, rates, 1.0)
    orc = O.Oracle(tree, params, rates, 1.0,
                   None if tree["gamma_s"]["m_lut_bits"] <= 6 else d.gamma_lut)
    kc = orc.k
    st = datapath.init_state(d, np.zeros((B, M, N)), np.array([0, 7]))
    wmax, wmin = kc.acc_hi, kc.acc_lo
    st.acc[:, 0, :] = wmax                          # neuron 0: every weight +max
    st.acc[:, 1, :] = wmin                          # neuron 1: every weight -max
    st.acc[1, 0, 5:] = 3                            # a few small weights in trial 1
    st.a_m[0, :] = kc.a_max                         # trial 0: a_m at the top, a_s empty -> x >> 0
    st.a_s[1, :4] = kc.a_max                        # trial 1: a_s at the top -> x << 0
    st.a_m[1, 4:] = kc.a_max // 3
    st.a_s[1, 4:] = kc.a_max // 5
    st.gamma[:] = (1 << kc.g_bits) - 1
    ost = orc.init(np.zeros((B, M, N)), [0, 7])
    for f in ("a_m", "a_s", "acc", "gamma"):
        ost[f] = getattr(st, f).tolist()
    X = np.zeros((5, B, N), np.uint8)
    X[1:, 0, :] = 1                                  # trial 0: every afferent spikes from step 1
    X[1::2, 1, :3] = 1
    Y = np.zeros((5, B, M), np.uint8)
    Y[:, 0, 1] = 1                                   # teacher spikes on the silent neuron
    Y[::2, 1, 0] = 1
    return d, orc, st, ost, X, Y


@pytest.mark.parametrize("name, overrides", CONSTRUCTED,
                         ids=[c[0] + ("-" + c[1]["traces.rounding"] if c[1] else "")
                              for c in CONSTRUCTED])
def test_oracle_on_constructed_saturating_states(name, overrides):
    """docs/datapath.md *Formats* "on overflow" column: traces, V (both signs), the c_w V
    clip and the bracket, the post factor, gamma_s outside the table and the weights
    saturate (weights at both rails, with exact counts: tests/emulator/test_counter_invariants.py), and (fxp16) the USP saturates at both signs; with phi_max dt = 0.95 the
    student spikes.  numpy step and numba kernel equal the oracle after each of 5 steps."""
    params = NeuronParams(phi_max=1900.0)
    d, orc, st_np, ost, X, Y = _constructed(name, overrides, params)
    st_nb = st_np.copy()
    B, M, N = st_np.acc.shape
    rec = record_arrays(0, B, M, N)
    spk = np.zeros((B, M), np.int64)
    seed = 11
    n_student = 0
    seen = {f: [] for f in ("x", "v", "acc", "post")}
    for k in range(X.shape[0]):
        orc.step(ost, X[k], Y[k], seed)
        datapath.step(d, st_np, X[k], Y[k], seed)
        kernels.run_chunk(d, st_nb, X[k:k + 1], Y[k:k + 1], seed, 0, rec, 0, spk)
        assert_same_state(ost, st_np, f"{name} {overrides} numpy step {k}")
        assert_same_state(ost, st_nb, f"{name} {overrides} numba step {k}")
        n_student += int(np.sum(ost["spikes"]))
        for f in seen:
            seen[f].append(np.array(ost[f]).ravel())
    seen = {f: np.concatenate(a) for f, a in seen.items()}
    c, kc = ost["counts"], orc.k
    for key in ("traces", "potential", "gamma_s", "post", "bracket", "weights_sat"):
        assert c[key] > 0, (key, c)
    if name == "fxp16":                                        # USP at both rails
        assert c["usp"] > 0
        assert seen["x"].max() == kc.x_hi and seen["x"].min() == kc.x_lo
    assert seen["v"].max() == kc.V_hi and seen["v"].min() == kc.V_lo
    assert seen["acc"].max() == kc.acc_hi or seen["acc"].min() == kc.acc_lo
    assert seen["post"].max() == kc.P_hi
    assert n_student > 0


# ----------------------------------------------------------------------------- tables
def test_sigmoid_table_and_constants_are_the_closed_forms():
    """docs/datapath.md *Formats*, rows sigma and constants: the emulator's sigmoid table and
    every discretized integer equal the oracle's exact evaluation (Decimal / Fraction), for
    every bundled fixed config.  (The oracle step test already depends on these; this names
    the constant when one differs.)"""
    rates = high_rate_task().rates
    p = NeuronParams()
    for name in ("loihi2_ideal", "fxp16", "fxp32", "loihi1"):
        tree = read_tree(name)
        d = discretize(validate(tree, name), p, rates, ETA)
        k = O.Constants(tree, p, rates, ETA, gamma_lut=d.gamma_lut)
        assert_array_equal(d.sigma_lut, np.array(k.sigma_lut), err_msg=name)
        for f in ("decay_m", "decay_s", "usp_mant", "usp_shift", "homo_shift", "cu_q", "cw_mant",
                  "cw_shift", "phidt_mant", "phidt_shift", "eta_mant", "eta_shift",
                  "inv_ceps_mant", "inv_ceps_shift"):
            assert getattr(d, f) == getattr(k, f), (name, f, getattr(d, f), getattr(k, f))
        assert_array_equal(d.homo_mant, np.array(k.homo_mant), err_msg=name)
        assert_array_equal(d.rates_q, np.array(k.rates_q), err_msg=name)


def test_gamma_table_against_quadrature():
    """docs/datapath.md *How gamma_s is obtained on chip*: gamma_s = 1/E[h(V)], V ~ N(m, v),
    h = phi'^2/phi = phi_max beta^2 sigma (1-sigma)^2, nearest on U(bits).F, saturated.
    loihi2_ideal (64x64) and loihi1 (32x32): the whole table equals the oracle's own
    quadrature.  fxp16 (256x256) and fxp32 (1024x1024), which the oracle takes as input: 40
    entries each (incl. the corners and the v = 0 column) are within 0.5 LSB + 1e-6 relative
    of the quadrature (the code uses v = 1e-6 mV^2 for the v = 0 nodes: 1e-7 relative)."""
    p = NeuronParams()
    rates = high_rate_task().rates
    for name in ("loihi2_ideal", "loihi1"):
        tree = read_tree(name)
        d = discretize(validate(tree, name), p, rates, ETA)
        k = O.Constants(tree, p, rates, ETA)
        assert_array_equal(d.gamma_lut, np.array(k.gamma_lut), err_msg=name)
    g = np.random.default_rng(5)
    for name in ("fxp16", "fxp32"):
        tree = read_tree(name)
        gm = tree["gamma_s"]
        d = discretize(validate(tree, name), p, rates, ETA)
        nm, nv = 1 << gm["m_lut_bits"], 1 << gm["v_lut_bits"]
        picks = [(0, 0), (nm - 1, nv - 1), (0, nv - 1), (nm - 1, 0), (nm // 2, 0), (nm // 2, nv // 2)]
        picks += [(int(i), int(j)) for i, j in zip(g.integers(0, nm, 34), g.integers(0, nv, 34))]
        top = (1 << gm["bits"]) - 1
        for i, j in picks:
            m = -32.0 + i * 64.0 / nm
            v = j * 64.0 / nv
            exact = 2.0 ** gm["frac"] / float(O.h_expectation(m, v, p))
            got = int(d.gamma_lut[i, j])
            if exact >= top:
                assert got == top, (name, i, j, got, exact)
            else:
                assert abs(got - exact) <= 0.5 + 1e-6 * exact, (name, i, j, got, exact)
