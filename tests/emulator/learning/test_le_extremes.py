"""Range use of the learning-engine model from every step: the numba kernel and the numpy
step keep the same running minimum and maximum of every variable per trial, those are the
extremes over every step, and keeping them changes no other bit."""
import numpy as np
import pytest

from emulator import learning
from emulator import runner as R
from emulator.hwconfig import load
from emulator.learning.driver import STATE_RECORDS
from emulator.learning.extremes import EXTREME_VARIABLES
from emulator.task import fig3_task

SHAPE = dict(n_trials=3, N=23, M=2)
STEPS = 600
ETA = 4 * R.default_eta()        # the main job's rate: carries and saturations happen


def _design(name, overrides):
    cfg = load(name).with_overrides(**overrides)
    task = fig3_task(seed=2, w_scale=0.03, **SHAPE)
    return task, learning.design_for_config(cfg, task, ETA)


def _every_step(res):
    """(min, max) per trial of each extreme variable from a record of every step (and the
    initial weights and tag_2, as the run holds them: its first record is taken before
    step 0)."""
    rs = res.record_state
    out = {}
    for name in EXTREME_VARIABLES:
        a = rs[name]
        if name in ("weights", "tag_2"):
            a = np.concatenate([rs[name + "_before"][:1], a])
        a = a.reshape(a.shape[0], a.shape[1], -1)
        out[name] = (a.min(axis=(0, 2)), a.max(axis=(0, 2)))
    return out


@pytest.mark.parametrize("name, overrides", [("loihi2", {}), ("loihi2_events", {}),
                                             ("loihi2", {"engine.t_epoch": 2})])
def test_le_extremes_numba_equals_numpy_and_every_step(name, overrides):
    task, d = _design(name, overrides)
    kw = dict(record_every=1, record_state=True)
    ref = learning.run(task, STEPS, 4, d, backend="numpy", chunk_steps=STEPS, **kw)
    for chunk, par, fused in ((STEPS, False, True), (97, True, True), (250, False, False)):
        nb = learning.run(task, STEPS, 4, d, chunk_steps=chunk, parallel=par, fused=fused, **kw)
        np.testing.assert_array_equal(nb.w_int, ref.w_int)
        np.testing.assert_array_equal(nb.lo, ref.lo)
        np.testing.assert_array_equal(nb.hi, ref.hi)
        for rec in ref.record_state:
            np.testing.assert_array_equal(nb.record_state[rec], ref.record_state[rec],
                                          err_msg=rec)
    want = _every_step(ref)
    for col, var in enumerate(EXTREME_VARIABLES):
        np.testing.assert_array_equal(ref.lo[:, col], want[var][0], err_msg=var)
        np.testing.assert_array_equal(ref.hi[:, col], want[var][1], err_msg=var)
    # the values are nontrivial: traces reach several impulses, the error a teacher spike
    ex = {v: (ref.lo[:, c], ref.hi[:, c]) for c, v in enumerate(EXTREME_VARIABLES)}
    assert ex["x1"][1].max() >= 2 * d.k_x and ex["x1"][0].min() == 0
    assert ex["error"][1].max() > 0.9 * 2 ** d.neuron.error_frac
    assert ex["potential"][0].min() < 0 < ex["potential"][1].max()


def test_le_extremes_change_no_bit():
    """With or without records, snapshots and chunk splits: the same weights, counters and
    extremes (the golden hashes pin the bits themselves)."""
    task, d = _design("loihi2", {})
    a = learning.run(task, STEPS, 4, d)
    b = learning.run(task, STEPS, 4, d, record_every=7, record_state=True, chunk_steps=50)
    np.testing.assert_array_equal(a.w_int, b.w_int)
    np.testing.assert_array_equal(a.d_tag, b.d_tag)
    assert a.counters == b.counters and a.synapse_counters == b.synapse_counters
    np.testing.assert_array_equal(a.lo, b.lo)
    np.testing.assert_array_equal(a.hi, b.hi)
    assert b.record_state["weights"].shape[0] == STEPS // 7 == b.record_w.shape[0]
    np.testing.assert_array_equal(b.record_state["weights"] * d.lsb_w, b.record_w)
    assert set(STATE_RECORDS) <= set(b.record_state)


def test_run_result_extremes_in_physical_units():
    """emulator.run on a learning-engine config fills RunResult.extremes: the weights in
    weight units (the initial ones included), tag_2 as its residual below the weight LSB,
    V in mV, e per step."""
    task = fig3_task(seed=2, w_scale=0.03, **SHAPE)
    res = R.run("loihi2", task, STEPS, 4, eta=ETA)
    d = res.state.design
    assert set(res.extremes) == set(EXTREME_VARIABLES)
    w_lo, w_hi = res.extremes["weights"]
    w0 = learning.quantize_weights(d, task.w_init)
    w0 = (w0 >> 1) << 1                                   # Lava truncates the lowest bit
    assert np.all(w_lo <= w0.reshape(3, -1).min(axis=1) * d.lsb_w)
    np.testing.assert_array_equal(w_hi >= res.w_final.reshape(3, -1).max(axis=1), True)
    np.testing.assert_allclose(w_lo, res.state.lo[:, EXTREME_VARIABLES.index("weights")]
                               * d.lsb_w)
    t_lo, t_hi = res.extremes["tag_2"]
    assert np.all(t_lo <= 0) and np.all(t_hi >= 0)     # the residual starts at 0
    room = (2 ** (d.engine.synaptic_bits - 1) - 1 - d.d_offset) * 2.0 ** -d.hidden_bits
    assert np.all(t_hi <= room * d.lsb_w)               # tag_2 is an unsigned 8-bit word
    e_hi = res.extremes["error"][1]
    assert 0.9 < e_hi.max() <= 1.0
