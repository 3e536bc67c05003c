"""Path 2 with many output neurons: M > 1 neurons share the N inputs, one
``LearningDense`` of shape (M, N) and one learning-neuron process of shape (M,).

* Lava equals the emulator's learning-engine mode (numba kernel and numpy steps) bit for bit
  for M = 3 and M = 8 on the shipped ``loihi2`` config at ``natgrad run``'s learning rate,
  mixed input rates (5/10/20/50 Hz): final weights, tag_2, x traces, every neuron Var of
  ``NEURON_VARS`` (per neuron), the counters and the levels sent.
* ``lava_procs.run`` (the public API) equals ``emulator.run`` for M = 3.
* The runs have power: each neuron has its own teacher, sends levels of both signs and ends
  with its own weight change; Lava with the teacher spike trains handed to the wrong neurons
  (rolled by one) no longer equals the emulator.

Run this file on its own (Lava cannot start after a test that set a multiprocessing
'spawn' context in the same process).  The 1000 -> 500 task's bit-exact run and its speed
are ``benchmarks/bench_lava_path2_many_outputs.py``.
"""
import numpy as np
import pytest

from emulator import learning as LE
from emulator.hwconfig import load
from emulator.spikes import SpikeSource
from emulator.task import fig3_task
from natgrad.protocol import default_eta

#: (M, N): both with four rate groups of N / 4 afferents each.
CASES = {3: 24, 8: 48}
STEPS, SEED, TRIAL, RATES = 600, 0, 1, (5.0, 10.0, 20.0, 50.0)


def _case(m):
    task = fig3_task(n_trials=2, N=CASES[m], M=m, group_rates=RATES, seed=SEED)
    d = LE.design_for_config(load("loihi2"), task, default_eta())
    return task, d


@pytest.fixture(scope="module", params=sorted(CASES), ids=lambda m: f"M{m}")
def case(request):
    m = request.param
    task, d = _case(m)
    emu = {b: LE.run(task, STEPS, SEED, d, trials=[TRIAL], backend=b) for b in ("numba", "numpy")}
    return m, task, d, emu


def _assert_equal(res, emu, m, n):
    """Every quantity Lava reads back equals the emulator's (one trial: index 0)."""
    assert res["w_int"].shape == (m, n) and res["neuron"]["v"].shape == (m,)
    np.testing.assert_array_equal(res["w_int"], emu.w_int[0])
    np.testing.assert_array_equal(res["tag_2"], emu.d_tag[0])
    np.testing.assert_array_equal(res["x1"], emu.x_traces[0, 0])
    np.testing.assert_array_equal(res["x2"], emu.x_traces[0, 1])
    nv = res["neuron"]
    for f in ("a_m", "a_s", "hbar", "gamma", "v", "sigma", "err", "p", "pend", "sent", "carry"):
        np.testing.assert_array_equal(nv[f], getattr(emu.neuron, f)[0], err_msg=f)
    np.testing.assert_array_equal(nv["counts"], emu.neuron.counts)
    np.testing.assert_array_equal(nv["events"], emu.events[0])
    assert res["counters"] == emu.counters
    np.testing.assert_array_equal(res["teacher_spikes"].sum(axis=0), emu.teacher_spikes[0])


def test_the_runs_exercise_every_neuron(case):
    """Own teachers, own levels of both signs, own weight changes; numba == numpy."""
    m, task, d, emu = case
    e = emu["numba"]
    assert d.encoding == "graded" and d.dd_products            # the shipped design
    X, Y = SpikeSource(task, SEED, np.array([TRIAL])).next(STEPS)
    Y = Y[:, 0, :]
    assert len({Y[:, j].tobytes() for j in range(m)}) == m     # distinct teacher trains
    ev = e.events[0]
    assert np.all(ev[:, 0] > 0) and np.all(ev[:, 1] > 0), ev   # every neuron, both signs
    assert e.counters["post_carry"] > 0                        # excess levels carried
    dw = e.w_int[0] - LE.quantize_weights(d, task.w_init[TRIAL])
    assert np.all(np.abs(dw).max(axis=1) >= 1) and np.abs(dw).max() >= 4
    assert len({dw[j].tobytes() for j in range(m)}) == m       # distinct weight changes
    assert len(set(e.neuron.v[0].tolist())) > 1              # distinct membranes
    a, b = emu["numba"], emu["numpy"]
    np.testing.assert_array_equal(a.w_int, b.w_int)
    np.testing.assert_array_equal(a.d_tag, b.d_tag)
    np.testing.assert_array_equal(a.x_traces, b.x_traces)
    np.testing.assert_array_equal(a.events, b.events)
    for f in ("a_m", "a_s", "hbar", "gamma", "v", "sigma", "err", "p", "counts", "pend", "sent",
              "carry"):
        np.testing.assert_array_equal(getattr(a.neuron, f), getattr(b.neuron, f), err_msg=f)
    assert a.counters == b.counters and a.synapse_counters == b.synapse_counters


@pytest.mark.timeout(180)
def test_lava_equals_emulator_with_many_outputs(case):
    from lava_procs.learning_engine import run_lava_le
    m, task, d, emu = case
    res = run_lava_le(d, task, STEPS, SEED, trial=TRIAL)
    for backend in ("numba", "numpy"):
        _assert_equal(res, emu[backend], m, task.N)


@pytest.mark.timeout(180)
def test_teachers_on_the_wrong_neurons_break_the_agreement():
    """Lava with teacher train j played into neuron j + 1 (mod M): every neuron's weights
    and membrane differ from the emulator's, so a neuron-order mix-up cannot pass."""
    from lava_procs.learning_engine import plastic_pair, run_network, spike_sources
    m = 3
    task, d = _case(m)
    emu = LE.run(task, STEPS, SEED, d, trials=[TRIAL])
    X, Y = SpikeSource(task, SEED, np.array([TRIAL])).next(STEPS)
    dense, neuron = plastic_pair(d, LE.quantize_weights(d, task.w_init[TRIAL]), SEED, TRIAL)
    spike_sources(dense, neuron, X[:, 0, :], np.roll(Y[:, 0, :], 1, axis=1))
    res = run_network(d, dense, neuron, STEPS)
    for j in range(m):
        assert not np.array_equal(res["w_int"][j], emu.w_int[0, j]), j
    assert np.all(res["neuron"]["v"] != emu.neuron.v[0])


@pytest.mark.timeout(180)
def test_public_run_with_many_outputs():
    """``lava_procs.run`` (path 2 behind the public API) with M = 3 equals ``emulator.run``
    of the same trial: weights (1, M, N), the neuron's counters, teacher spikes per neuron."""
    import emulator
    import lava_procs
    task, _ = _case(3)
    emu = emulator.run("loihi2", task, STEPS, SEED, trials=[TRIAL])
    lav = lava_procs.run("loihi2", task, STEPS, SEED, trial=TRIAL)
    assert lav.w_int.shape == (1, 3, task.N)
    np.testing.assert_array_equal(lav.w_int, emu.w_int)
    np.testing.assert_array_equal(lav.w_final, emu.w_final)
    np.testing.assert_array_equal(lav.teacher_spikes, emu.teacher_spikes)
    assert lav.counters == {k: emu.counters[k] for k in lav.counters}
