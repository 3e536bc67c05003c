"""Counter invariants of the integer datapath.

* After a run that saturates, no recorded or final value leaves its format
  (docs/datapath.md *Formats*; the bounds are computed here from the config YAML).
* Constructed cases pin the weight-saturation count exactly, at the positive and at the
  negative rail (docs/datapath.md *Exact integer arithmetic of one step*, "update").
* A zero post factor counts no underflow, although its brackets are nonzero ("update": an
  underflow is dw = 0 with P B != 0).
"""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from emulator import run
from emulator.hwconfig import validate
from emulator.task import Task, fig3_task
from emulator.variables import COUNTER_INDEX
from datapath_cases import high_rate_task, read_tree

ALL = ("weights", "potential", "usp", "trace_m", "trace_s", "sigma", "error", "gamma_s", "post")


def format_bounds(tree) -> dict:
    """(frac, lo, hi) of every recordable variable, from the config (docs/datapath.md
    *Formats*): traces U(bits), USP / V / post / visible weights S(bits), sigma U1.F
    (0 .. 2**F), error S(F + 2) with |e| <= 1, gamma_s U(bits)."""
    def s(bits):
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    t = tree
    tr = t["traces"]
    return {
        "trace_m": (tr["frac"], 0, (1 << tr["bits"]) - 1),
        "trace_s": (tr["frac"], 0, (1 << tr["bits"]) - 1),
        "usp": (t["usp"]["frac"], *s(t["usp"]["bits"])),
        "potential": (t["potential"]["frac"], *s(t["potential"]["bits"])),
        "weights": (t["weights"]["frac"], *s(t["weights"]["bits"])),
        "post": (t["post"]["frac"], *s(t["post"]["bits"])),
        "sigma": (t["sigmoid"]["frac"], 0, 1 << t["sigmoid"]["frac"]),
        "error": (t["error"]["frac"], -(1 << t["error"]["frac"]), 1 << t["error"]["frac"]),
        "gamma_s": (t["gamma_s"]["frac"], 0, (1 << t["gamma_s"]["bits"]) - 1),
    }


@pytest.mark.parametrize("name", ["loihi2_ideal", "loihi1", "fxp16", "fxp32"])
def test_no_value_leaves_its_format(name):
    """A 400-step run with weights 3x the task's scale and 50/300-Hz inputs (saturating
    several variables on the narrow formats): every value recorded after every step, the
    final State and the accumulator lie inside their formats; counters are >= 0 and a
    first step is recorded exactly for the nonzero counters."""
    tree = read_tree(name)
    steps = 400
    task = fig3_task(n_trials=2, N=20, M=2, seed=1, w_scale=0.05, group_rates=(50.0, 300.0))
    res = run(validate(tree, name), task, steps, 2, record=ALL, record_every=1)
    bounds = format_bounds(tree)
    for var, (frac, lo, hi) in bounds.items():
        codes = res.record[var] * 2.0 ** frac
        assert_array_equal(codes, np.rint(codes), err_msg=var)          # on the grid
        assert codes.min() >= lo and codes.max() <= hi, (var, codes.min(), codes.max(), lo, hi)
    st = res.state
    w = tree["weights"]
    acc_lo, acc_hi = -(1 << (w["bits"] + w["extra_frac"] - 1)), (1 << (w["bits"] + w["extra_frac"] - 1)) - 1
    assert acc_lo <= st.acc.min() and st.acc.max() <= acc_hi
    for field, var in (("a_m", "trace_m"), ("a_s", "trace_s"), ("x", "usp"), ("v", "potential"),
                       ("post", "post"), ("sigma", "sigma"), ("err", "error"),
                       ("gamma", "gamma_s")):
        _, lo, hi = bounds[var]
        a = getattr(st, field)
        assert lo <= a.min() and a.max() <= hi, (field, a.min(), a.max())
    assert np.all(st.counts >= 0)
    assert_array_equal(st.first >= 0, st.counts > 0)
    assert np.all(st.first < steps)
    assert st.counts.sum() > 0                       # the run did saturate or underflow


def _rails(tree):
    w = tree["weights"]
    return ((1 << (w["bits"] - 1)) - 1) / 2.0 ** w["frac"], -(1 << (w["bits"] - 1)) / 2.0 ** w["frac"]


SAT_CASES = [("loihi2_ideal", {}), ("loihi2_ideal", {"weights.extra_frac": 5}), ("fxp16", {}),
             ("loihi1", {}), ("fxp32", {})]


@pytest.mark.parametrize("name, overrides", SAT_CASES,
                         ids=[n + ("+extra" if o else "") for n, o in SAT_CASES])
@pytest.mark.parametrize("sign", ["positive", "negative"])
def test_weight_saturation_counts_are_pinned(name, overrides, sign):
    """Silent inputs (x = 0, so V = 0, m = v = 0 and B_i = -c_eps c_u < 0 for every synapse).

    positive: silent teacher, e = -phi dt sigma(0) < 0, P < 0 (eta = 1), so dw > 0 at every
    synapse; negative: a teacher spiking every bin (2000 Hz), e > 0, P > 0 (eta = 0.003), dw < 0.
    Half the synapses start on the rail the updates push them into: each of them saturates at
    every step, the others move away from 0 without reaching the rail.  So the count is exactly
    steps x B x M x (synapses on the rail), first at step 0; the railed weights end exactly at
    the rail code; no post factor saturates and nothing underflows."""
    tree = read_tree(name, **overrides)
    top, bottom = _rails(tree)
    B, M, N, steps = 2, 2, 6, 40
    w0 = np.zeros((B, M, N))
    rail = top if sign == "positive" else bottom
    w0[:, :, :3] = rail
    teacher, eta = (0.0, 1.0) if sign == "positive" else (2000.0, 0.003)
    task = Task(rates=np.zeros(N), w_init=w0, teacher_rate=teacher)
    res = run(validate(tree, name), task, steps, 0, eta=eta)
    c = res.state.counts
    assert c[COUNTER_INDEX["weights", "saturation"]] == steps * B * M * 3
    assert res.state.first[COUNTER_INDEX["weights", "saturation"]] == 0
    assert c[COUNTER_INDEX["post", "saturation"]] == 0
    assert c[COUNTER_INDEX["weights", "underflow"]] == 0
    w = tree["weights"]
    rail_code = (1 << (w["bits"] - 1)) - 1 if sign == "positive" else -(1 << (w["bits"] - 1))
    assert np.all(res.w_int[:, :, :3] == rail_code)
    acc_rail = ((1 << (w["bits"] + w["extra_frac"] - 1)) - 1 if sign == "positive"
                else -(1 << (w["bits"] + w["extra_frac"] - 1)))
    assert np.all(res.state.acc[:, :, :3] == acc_rail)
    free = res.state.acc[:, :, 3:] * (1 if sign == "positive" else -1)
    assert np.all(free > 0) and np.all(free < abs(acc_rail))


@pytest.mark.parametrize("name", ["loihi2_ideal", "fxp16"])
def test_zero_post_factor_counts_no_underflow(name):
    """eta = 0: the post factor P is 0 at every step, so P B_i = 0 and no update underflows,
    although the brackets are nonzero and the neuron spikes; the same run with eta = 1e-5
    (P != 0, updates far below one LSB) counts underflows, so the case is not vacuous."""
    tree = read_tree(name)
    task = high_rate_task()
    steps = 300
    res = run(validate(tree, name), task, steps, 1, eta=0.0, record=("post",), record_every=1)
    assert np.all(res.record["post"] == 0)
    assert res.counters["weights"]["underflow"] == 0
    assert_array_equal(res.w_int, np.rint(task.w_init * 2.0 ** tree["weights"]["frac"]))
    assert res.teacher_spikes.sum() > 0 and res.output_spikes.sum() > 0
    tiny = run(validate(tree, name), task, steps, 1, eta=1e-5, record=("post",), record_every=1)
    assert np.count_nonzero(tiny.record["post"]) > 0
    assert tiny.counters["weights"]["underflow"] > 0
