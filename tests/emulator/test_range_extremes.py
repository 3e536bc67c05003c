"""Range use from every step: the kernels keep a running minimum and maximum
of every recordable variable per trial, so a value that peaks between two recorded steps (the
error e at a teacher spike) still shows in the report's range table and headroom."""
import numpy as np
import pytest

from emulator import runner as R
from emulator.hwconfig import load
from emulator.task import fig3_task

SHAPE = dict(n_trials=3, N=23, M=2)


def _every_step(res, w0):
    """(min, max) per trial of each variable from a record of every step; the weights with
    their initial values ``w0`` (B, M, N) as the run holds them, as the kernels count them."""
    out = {}
    for name, a in res.record.items():
        a = a.reshape(a.shape[0], a.shape[1], -1)
        lo, hi = a.min(axis=(0, 2)), a.max(axis=(0, 2))
        if name == "weights":
            w0 = w0.reshape(w0.shape[0], -1)
            lo, hi = np.minimum(lo, w0.min(axis=1)), np.maximum(hi, w0.max(axis=1))
        out[name] = (lo, hi)
    return out


def _chip_initial(cfg, task):
    """The initial weights as the datapath stores them (visible, physical units)."""
    from emulator import datapath
    from emulator.discretize import discretize
    d = discretize(cfg, task.params, task.rates, R.default_eta())
    return (datapath.init_state(d, task.w_init).acc >> d.w_extra) * 2.0 ** -d.w_frac


@pytest.mark.parametrize("name, overrides", [("loihi2_ideal", {}), ("fxp16", {}),
                                             ("loihi2_ideal", {"weights.extra_frac": 8})])
def test_datapath_extremes_every_step_numba_equals_numpy(name, overrides):
    """numba (fused kernel, chunked, trials on threads) and the numpy step give the same bits
    and the same running extremes, and those are the min/max over every step (with hidden
    weight bits too: the kernels count the accumulator, the result shows visible weights)."""
    cfg = load(name).with_overrides(**overrides)
    task = fig3_task(seed=2, w_scale=0.03, **SHAPE)
    kw = dict(record=R.RECORDABLE, record_every=1)
    ref = R.run(cfg, task, 900, 4, backend="numpy", chunk_steps=900, **kw)
    for chunk, par in ((900, False), (61, False), (250, True)):
        nb = R.run(cfg, task, 900, 4, chunk_steps=chunk, parallel=par, **kw)
        np.testing.assert_array_equal(nb.w_int, ref.w_int)
        np.testing.assert_array_equal(nb.state.counts, ref.state.counts)
        np.testing.assert_array_equal(nb.state.lo, ref.state.lo)
        np.testing.assert_array_equal(nb.state.hi, ref.state.hi)
        for name in R.RECORDABLE:
            for a, b in zip(nb.extremes[name], ref.extremes[name]):
                np.testing.assert_array_equal(a, b, err_msg=name)
    want = _every_step(ref, _chip_initial(cfg, task))
    for name in R.RECORDABLE:
        np.testing.assert_array_equal(ref.extremes[name][0], want[name][0], err_msg=name)
        np.testing.assert_array_equal(ref.extremes[name][1], want[name][1], err_msg=name)
    assert ref.extremes["error"][1].max() > 0.9        # a teacher spike: e near +1


def test_extremes_do_not_need_a_record():
    """The extremes are counted whatever is recorded (nothing here)."""
    task = fig3_task(seed=2, w_scale=0.03, **SHAPE)
    a = R.run("loihi2_ideal", task, 900, 4, record=R.RECORDABLE, record_every=1)
    b = R.run("loihi2_ideal", task, 900, 4)
    assert b.record == {}
    for name in R.RECORDABLE:
        np.testing.assert_array_equal(a.extremes[name][0], b.extremes[name][0])
        np.testing.assert_array_equal(a.extremes[name][1], b.extremes[name][1])


def test_float_extremes_every_step():
    """The float64 run counts the same extremes in its compiled loop (chunking and threads do
    not change them)."""
    task = fig3_task(seed=2, w_scale=0.03, **SHAPE)
    kw = dict(record=R.RECORDABLE, record_every=1)
    a = R.run("float64", task, 900, 4, chunk_steps=900, parallel=False, **kw)
    b = R.run("float64", task, 900, 4, chunk_steps=77, parallel=True)
    want = _every_step(a, task.w_init)
    for name in R.RECORDABLE:
        np.testing.assert_array_equal(a.extremes[name][0], want[name][0], err_msg=name)
        np.testing.assert_array_equal(a.extremes[name][1], want[name][1], err_msg=name)
        np.testing.assert_array_equal(b.extremes[name][0], want[name][0], err_msg=name)
        np.testing.assert_array_equal(b.extremes[name][1], want[name][1], err_msg=name)


def test_report_range_of_the_error_comes_from_every_step():
    """On loihi2_ideal the error e reaches about +1 at every teacher
    spike, so its headroom in S18.16 (|e| < 2) is about 1 bit.  The table used to come from
    the 40 recorded steps ([-0.0061, -0.00037], 8.35 bits)."""
    from natgrad.main_job import run_main_job
    rep = run_main_job(load("loihi2_ideal"), 2000, 0, trials=1, lava_steps=0, progress=False)
    e = rep["variables"]["error"]
    assert e["range_from"] == "every step"
    assert e["float_max"] >= 0.9 and e["chip_max"] >= 0.9
    assert 0.5 < e["headroom_bits"] < 1.5
    for name, row in rep["variables"].items():
        assert row["float_min"] <= row["float_max"] and row["chip_min"] <= row["chip_max"], name
