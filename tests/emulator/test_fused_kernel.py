"""The fused datapath kernel (spikes drawn inside the compiled loop) gives the bits
of the numpy stages fed by :class:`emulator.spikes.SpikeSource`; serial and parallel agree."""
import numpy as np
import pytest
from scipy.special import expit

from emulator import runner as R
from emulator.hwconfig import ROUNDING_MODES, load, validate
from emulator.spikes import SpikeSource, expit_one, spikes_chunk, threshold_one
from emulator.task import Attenuation, fig3_task
from fixedpoint import rng

ALL = R.RECORDABLE
B, N, M = 3, 7, 2


def _config(mode: str):
    tree = load("loihi2_ideal").tree
    tree = {k: (dict(v) if isinstance(v, dict) else v) for k, v in tree.items()}
    for sec in ("traces", "usp", "weights", "potential", "bracket", "post"):
        tree[sec]["rounding"] = mode
    tree["sigmoid"]["interpolate"] = mode != "floor"
    return validate(tree, f"<loihi2_ideal with {mode} rounding>")


def _assert_same(a, b):
    np.testing.assert_array_equal(a.w_int, b.w_int)
    for name in a.record:
        np.testing.assert_array_equal(a.record[name], b.record[name], err_msg=name)
    for field in ("a_m", "a_s", "acc", "v", "x", "gamma", "sigma", "err", "post", "spikes",
                  "counts", "first", "lo", "hi"):     # lo, hi: the running extremes
        np.testing.assert_array_equal(getattr(a.state, field), getattr(b.state, field),
                                      err_msg=field)
    np.testing.assert_array_equal(a.output_spikes, b.output_spikes)
    np.testing.assert_array_equal(a.teacher_spikes, b.teacher_spikes)


def test_scalar_twins_match_scipy_and_rng():
    z = np.random.default_rng(0).standard_normal(20000) * np.array([0.01, 1.0, 30.0, 800.0]).repeat(5000)
    got = np.array([expit_one(v) for v in z])
    np.testing.assert_array_equal(got, expit(z))
    p = np.concatenate([np.linspace(-0.1, 1.1, 1001), [0.05, 1e-17, 1.0 - 1e-16]])
    np.testing.assert_array_equal(np.array([threshold_one(v) for v in p], np.uint64),
                                  rng.bernoulli_threshold(p))


@pytest.mark.parametrize("teacher", ["realizable", "poisson", "attenuation"])
def test_spikes_in_the_loop_equal_spike_source(teacher):
    kw = {"poisson": dict(teacher_rate=30.0),
          "attenuation": dict(f=Attenuation(np.linspace(0.3, 1.0, N)))}.get(teacher, {})
    task = fig3_task(n_trials=5, N=N, M=M, seed=2, w_scale=0.05, **kw)
    trials = np.array([4, 1, 3])
    ref, src = SpikeSource(task, 9, trials), SpikeSource(task, 9, trials)
    for n in (1, 7, 300):                            # the traces carry over between chunks
        X, Y = ref.next(n)
        X2, Y2 = np.zeros_like(X), np.zeros_like(Y)
        spikes_chunk(src.kernel_args(), src.trials, np.uint64(9), src.k, X2, Y2)
        src.advance(n)
        np.testing.assert_array_equal(X2, X)
        np.testing.assert_array_equal(Y2, Y)
        np.testing.assert_array_equal(src.a_m, ref.a_m)
        np.testing.assert_array_equal(src.a_s, ref.a_s)
    assert Y.sum() > 0 and X.sum() > 0


@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_fused_equals_numpy_every_rounding_mode(mode):
    cfg = _config(mode)
    task = fig3_task(n_trials=B, N=N, M=M, seed=1, w_scale=0.03)
    kw = dict(record=ALL, record_every=7)
    ref = R.run(cfg, task, 600, 5, backend="numpy", chunk_steps=600, **kw)
    assert ref.state.counts.sum() > 0
    for chunk in (1, 7, 4000):
        _assert_same(ref, R.run(cfg, task, 600, 5, chunk_steps=chunk, parallel=False, **kw))


@pytest.mark.parametrize("cfg, teacher_rate", [("loihi2_ideal", 30.0), ("fxp16", None)])
def test_fused_equals_the_array_path_and_parallel_equals_serial(cfg, teacher_rate):
    task = fig3_task(n_trials=5, N=N, M=M, seed=3, w_scale=0.03, teacher_rate=teacher_rate)
    kw = dict(record=("weights", "potential", "usp"), record_every=5)
    ref = R.run(cfg, task, 900, 2, fused=False, parallel=False, chunk_steps=400, **kw)
    for chunk in (1, 7, 4000):
        _assert_same(ref, R.run(cfg, task, 900, 2, parallel=True, chunk_steps=chunk, **kw))
    _assert_same(ref, R.run(cfg, task, 900, 2, fused=False, parallel=True, chunk_steps=7, **kw))
    # a trial subset draws the same spikes as inside the whole batch
    sub = R.run(cfg, task, 900, 2, trials=[3, 1], chunk_steps=4000)
    np.testing.assert_array_equal(sub.w_int, ref.w_int[[3, 1]])
    np.testing.assert_array_equal(sub.teacher_spikes, ref.teacher_spikes[[3, 1]])


def test_parallel_default_and_lava_in_one_process():
    """The default (parallel) run leaves multiprocessing's start method to Lava, which then
    forks its runtime in the same process (what ``natgrad run`` does)."""
    import subprocess
    import sys
    code = ("import numpy as np, multiprocessing as mp; from emulator import runner as R;"
            "from emulator.task import fig3_task;"
            "t = fig3_task(n_trials=4, N=20, M=1, seed=1, w_scale=0.03);"
            "a = R.run('loihi2_ideal', t, 300, 3);"
            "assert mp.get_start_method(allow_none=True) is None;"
            "import lava_procs; l = lava_procs.run('loihi2_ideal', t, 300, 3, trial=2);"
            "np.testing.assert_array_equal(l.w_int[0], a.w_int[2])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]


def _le_design(t_epoch, hidden, per_synapse, task):
    from emulator import learning as le
    cfg = load("loihi2").with_overrides(**{
        "engine.t_epoch": t_epoch, "mapping.hidden_bits": hidden,
        "engine.weight_rounding": "per_synapse" if per_synapse else "shared",
        "engine.trace_rounding": "per_synapse" if per_synapse else "shared"})
    return le.design_for_config(cfg, task, 40 * 5.5e-4)


def _le_assert_same(a, b):
    np.testing.assert_array_equal(a.w_int, b.w_int)
    np.testing.assert_array_equal(a.record_w, b.record_w)
    np.testing.assert_array_equal(a.x_traces, b.x_traces)
    np.testing.assert_array_equal(a.events, b.events)
    np.testing.assert_array_equal(a.teacher_spikes, b.teacher_spikes)
    for f in ("a_m", "a_s", "hbar", "gamma", "v", "sigma", "err", "p", "counts", "pend", "sent"):
        np.testing.assert_array_equal(getattr(a.neuron, f), getattr(b.neuron, f), err_msg=f)
    assert a.synapse_counters == b.synapse_counters
    if a.d_tag is not None:
        np.testing.assert_array_equal(a.d_tag, b.d_tag)


@pytest.mark.parametrize("t_epoch, hidden, per_synapse",
                         [(1, 3, False), (2, 4, False), (3, 0, True)])
def test_learning_engine_fused_and_parallel_equal_numpy(t_epoch, hidden, per_synapse):
    """The learning-engine kernel with spikes drawn inside (serial and on threads,
    chunks of 1, 7 and 4000 steps) gives the bits of the numpy neuron + LearningDense replica
    fed by SpikeSource; the state carries over between chunks."""
    from emulator import learning as le
    task = fig3_task(n_trials=5, N=N, M=M, seed=4, w_scale=0.3, group_rates=(40.0, 120.0))
    trials = np.array([4, 0, 2])
    d = _le_design(t_epoch, hidden, per_synapse, task)
    steps = 1500
    ref = le.run(task, steps, 3, d, trials=trials, record_every=37, backend="numpy")
    assert ref.events.sum() >= 30 and np.any(ref.w_int != le.run(
        task, 0, 3, d, trials=trials).w_int), "the case must learn"
    for chunk, fused, parallel in ((1, True, False), (7, True, True), (4000, True, True),
                                   (7, False, True), (4000, False, False)):
        got = le.run(task, steps, 3, d, trials=trials, record_every=37, chunk_steps=chunk,
                     fused=fused, parallel=parallel)
        _le_assert_same(ref, got)
