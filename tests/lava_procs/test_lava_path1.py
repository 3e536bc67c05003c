"""Path 1: the NatGradNeuron Lava process equals the emulator bit for bit (fixed_pt) and the
float64 reference to 1e-12 (floating_pt).

Every Lava run goes through ``lava_procs.run_lava``, which stops its runtime in
``finally:``; every test that starts Lava has a timeout, so a deadlock fails instead of
hanging.  The integer reference is the numpy datapath of the emulator, stepped here one
step at a time so that the per-step student spike train can be compared with the sink.
"""
import numpy as np
import pytest

from emulator import datapath
from emulator import runner as R
from emulator.discretize import discretize
from emulator.params import NeuronParams
from emulator.reference import simulate
from emulator.spikes import SpikeSource
from emulator.task import fig3_task
from fixedpoint import rng
from lava_procs import NatGradNeuron, numba_available, run_lava

STEPS = 2000
#: step counts after which the reference state is kept (timing tests, short runs)
SNAPSHOTS = (1, 2, 10, 300, STEPS)
# theta = 2 mV makes the student fire often enough (~1 spike / 40 steps) for the spike
# trains to be a real comparison; w_scale 0.02 saturates a few weights on loihi2, so the
# weight-saturation counter moves too.
PARAMS = NeuronParams(theta=2.0)
#: (config, seed, trial): two configs x two seeds, trials 0 and 1 (counter-RNG trial index)
CASES = [("loihi2_ideal", 3, 0), ("loihi2_ideal", 11, 1), ("fxp16", 3, 1), ("fxp16", 11, 0)]


def test_numba_kernel_is_available():
    """numba is a dependency: the numba bit-exact tests below run, never skip."""
    assert numba_available()


def small_task(seed):
    return fig3_task(n_trials=2, N=24, M=2, seed=seed, w_scale=0.02, params=PARAMS)


def reference(config, task, steps, seed, trial, spikes=None):
    """Numpy-datapath run of one trial: snapshots {n: State after n steps}, spikes (steps, M)."""
    d = discretize(R.load(config), task.params, task.rates, R.default_eta())
    st = datapath.init_state(d, task.w_init[[trial]], np.array([trial]))
    if spikes is None:
        X, Y = SpikeSource(task, seed, np.array([trial])).next(steps)
    else:
        X, Y = (a[:, None, :] for a in spikes)
    idx = datapath.Indices(st.trials, task.M, task.N)
    out = np.zeros((steps, task.M), np.int64)
    snaps = {}
    for k in range(steps):
        datapath.step(d, st, X[k], Y[k], seed, idx)
        out[k] = st.spikes[0]
        if k + 1 in SNAPSHOTS:
            snaps[k + 1] = st.copy()
    return d, snaps, out


_REF = {}


def cached_reference(config, seed, trial):
    key = (config, seed, trial)
    if key not in _REF:
        _REF[key] = reference(config, small_task(seed), STEPS, seed, trial)
    return _REF[key]


def assert_state_equal(res, st, spikes=None):
    """Every Var of a fixed_pt run equals the emulator State (batch axis 0)."""
    v = res["vars"]
    for var, field in (("a_m", "a_m"), ("a_s", "a_s"), ("x", "x"), ("weights", "acc"),
                       ("gamma", "gamma"), ("v", "v"), ("sigma", "sigma"), ("err", "err"),
                       ("post", "post"), ("spikes", "spikes")):
        np.testing.assert_array_equal(v[var], getattr(st, field)[0], err_msg=var)
    np.testing.assert_array_equal(v["counts"], st.counts, err_msg="counts")
    np.testing.assert_array_equal(v["first"], st.first, err_msg="first")
    assert res["k"] == st.step
    assert res["counters"] == R.counters_dict(st.counts, st.first)
    if spikes is not None:
        np.testing.assert_array_equal(res["output_spikes"], spikes, err_msg="output spikes")
        np.testing.assert_array_equal(v["n_spikes"], spikes.sum(axis=0), err_msg="n_spikes")


# ------------------------------------------------------------------ fixed_pt, bit exact
@pytest.mark.timeout(120)
@pytest.mark.parametrize("config, seed, trial", CASES)
def test_fixed_pt_equals_emulator_bit_for_bit(config, seed, trial):
    d, snaps, spikes = cached_reference(config, seed, trial)
    task = small_task(seed)
    res = run_lava(config, task, STEPS, seed, tag="fixed_pt", trial=trial, backend="numba")
    assert_state_equal(res, snaps[STEPS], spikes)
    np.testing.assert_array_equal(res["w_int"], snaps[STEPS].acc[0] >> d.w_extra)
    # the comparison is not vacuous: spikes, learning and counters all moved
    assert spikes.sum() >= 20
    assert np.any(res["vars"]["weights"] != datapath.init_state(d, task.w_init[[trial]]).acc[0])
    assert res["vars"]["counts"].sum() > 0
    # and the emulator's own entry point agrees (numba backend, final state and spike counts)
    em = R.run(config, task, STEPS, seed, trials=[trial], backend="numba")
    np.testing.assert_array_equal(res["w_int"], em.w_int[0])
    np.testing.assert_array_equal(res["output_spikes"].sum(axis=0), em.output_spikes[0])
    assert res["counters"] == em.counters


@pytest.mark.timeout(120)
def test_fixed_pt_numpy_backend_equals_emulator():
    """The backend that calls emulator.datapath.step itself (slow: 300 steps)."""
    config, seed, trial = CASES[0]
    _, snaps, spikes = cached_reference(config, seed, trial)
    res = run_lava(config, small_task(seed), 300, seed, trial=trial, backend="numpy")
    assert res["backend"] == "numpy"
    assert_state_equal(res, snaps[300], spikes[:300])


@pytest.mark.timeout(120)
def test_fixed_pt_loihi_protocol_equals_emulator():
    """Plain Loihi2SimCfg(select_tag='fixed_pt') (LoihiProtocol, no model exceptions)."""
    config, seed, trial = CASES[2]
    _, snaps, spikes = cached_reference(config, seed, trial)
    res = run_lava(config, small_task(seed), 300, seed, trial=trial, sync="loihi")
    assert res["sync"] == "loihi"
    assert_state_equal(res, snaps[300], spikes[:300])


# ------------------------------------------------------------------ timing of the ports
@pytest.mark.timeout(120)
@pytest.mark.parametrize("steps", [1, 2, 10])
def test_step_k_is_lava_time_step_minus_one(steps):
    """Spikes of global step k reach the neuron in Lava time step k + 1 and are used there:
    traces (and everything else) equal the emulator's after 1, 2 and 10 steps."""
    config, seed, trial = CASES[0]
    _, snaps, spikes = cached_reference(config, seed, trial)
    res = run_lava(config, small_task(seed), steps, seed, trial=trial)
    assert res["k"] == steps
    assert_state_equal(res, snaps[steps], spikes[:steps])


@pytest.mark.timeout(120)
def test_ring_buffer_plays_column_k_in_step_k():
    """Hand-made spikes: afferents 0 and 3 fire at step 0 only, the teacher of neuron 1 at
    step 1 only.  After 2 steps the traces hold one decayed impulse (no offset, no Dense
    delay) and the error holds the teacher spike of step 1."""
    config, seed, trial = "loihi2_ideal", 4, 0
    task = small_task(seed)
    X = np.zeros((2, task.N), np.uint8)
    Y = np.zeros((2, task.M), np.uint8)
    X[0, [0, 3]] = 1
    Y[1, 1] = 1
    d, snaps, spikes = reference(config, task, 2, seed, trial, spikes=(X, Y))
    res = run_lava(config, task, 2, seed, trial=trial, spikes=(X, Y))
    assert_state_equal(res, snaps[2], spikes)
    a_m = res["vars"]["a_m"]
    assert a_m[0] > 0 and a_m[3] > 0 and np.all(np.delete(a_m, [0, 3]) == 0)
    assert a_m[0] <= d.impulse                     # one spike, decayed once
    assert res["vars"]["err"][1] > 0 > res["vars"]["err"][0]   # y=1 vs y=0


# ------------------------------------------------------------------ floating_pt
@pytest.mark.timeout(120)
def test_floating_pt_equals_float_reference():
    seed, trial, steps = 5, 1, STEPS
    task = small_task(seed)
    res = run_lava(None, task, steps, seed, tag="floating_pt", trial=trial)
    names = ("potential", "sigma", "error", "gamma_s", "post", "usp")
    ref = R.run("float64", task, steps, seed, trials=[trial], record=names, record_every=1)
    sim = simulate(task, "approx", R.default_eta(), steps, seed, trials=[trial])
    v = res["vars"]
    tol = dict(rtol=1e-12, atol=0)
    np.testing.assert_allclose(res["w"], ref.w_final[0], **tol)
    np.testing.assert_allclose(res["w"], sim.W[0], **tol)
    for var, name in (("v", "potential"), ("sigma", "sigma"), ("err", "error"),
                      ("gamma", "gamma_s"), ("post", "post"), ("x", "usp")):
        np.testing.assert_allclose(v[var], ref.record[name][-1, 0], err_msg=var, **tol)
    src = SpikeSource(task, seed, np.array([trial]))
    src.next(steps)
    np.testing.assert_allclose(v["a_m"], src.a_m[0], **tol)
    np.testing.assert_allclose(v["a_s"], src.a_s[0], **tol)
    # student spikes: Bernoulli(phi_max dt sigma(V_k)) on the counter RNG, per step
    p = task.params
    idx = rng.trial_unit_index([trial], np.arange(task.M))[0]
    expect = np.array([rng.bernoulli(p.phi_max * p.dt * ref.record["sigma"][k, 0], seed,
                                     rng.STREAM_STUDENT, k, idx) for k in range(steps)])
    np.testing.assert_array_equal(res["output_spikes"], expect.astype(np.int64))
    np.testing.assert_array_equal(v["n_spikes"], expect.sum(axis=0))
    assert expect.sum() >= 20
    assert res["k"] == steps


@pytest.mark.timeout(120)
def test_floating_pt_loihi_protocol():
    """Plain Loihi2SimCfg(select_tag='floating_pt') runs the float model too."""
    seed, trial, steps = 5, 0, 100
    task = small_task(seed)
    a = run_lava(None, task, steps, seed, tag="floating_pt", trial=trial, sync="loihi")
    ref = R.run("float64", task, steps, seed, trials=[trial])
    np.testing.assert_allclose(a["w"], ref.w_final[0], rtol=1e-12, atol=0)


# ------------------------------------------------------------------ argument checks
def test_process_rejects_bad_arguments():
    task = small_task(0)
    kw = dict(params=task.params, rates=task.rates, w_init=task.w_init[0])
    with pytest.raises(ValueError, match="tag"):
        NatGradNeuron(config="loihi2_ideal", tag="bit_acc", **kw)
    with pytest.raises(ValueError, match="fixed-point config"):
        NatGradNeuron(config="float64", tag="fixed_pt", **kw)
    with pytest.raises(ValueError, match="backend"):
        NatGradNeuron(config="loihi2_ideal", backend="gpu", **kw)
    with pytest.raises(ValueError, match="shape"):
        NatGradNeuron(config="loihi2_ideal", params=task.params, rates=task.rates[:3],
                      w_init=task.w_init[0])
    with pytest.raises(ValueError, match="steps"):
        run_lava("loihi2_ideal", task, 0, 0)
    with pytest.raises(ValueError, match="sync"):
        run_lava("loihi2_ideal", task, 10, 0, sync="never")
    with pytest.raises(ValueError, match="53 bits"):
        run_lava(R.load("loihi2_ideal").with_overrides(**{"weights.extra_frac": 32,
                                                   "weights.bits": 30}), task, 10, 0)
