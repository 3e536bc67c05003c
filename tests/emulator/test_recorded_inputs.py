"""Recorded input spikes all the way through: a recording plays identically
to every engine (float64, the integer datapath, the learning engine, Lava path 2), the
integer paths bit for bit, whatever the chunking; rasters are memory-mapped and read chunk
by chunk; spike times and rasters of the same spikes are the same input."""
from __future__ import annotations

import numpy as np
import pytest

from emulator import learning as LE
from emulator import runner as R
from emulator.hwconfig import load
from emulator.recorded import RecordedSpikes, RecordingError
from emulator.spikes import SpikeSource
from emulator.taskfile import load_task

DT = 0.0005


@pytest.fixture(scope="module")
def spec():
    return load_task("recorded_inputs")


def _raster_and_times(tmp_path, T=3000, N=7, seed=3):
    g = np.random.default_rng(seed)
    X = (g.random((T, N)) < 0.02).astype(np.uint8)
    np.save(tmp_path / "r.npy", X)
    k, i = np.nonzero(X)
    t = (k + g.random(k.size) * 0.999) * DT                  # anywhere inside the bin
    order = np.argsort(t, kind="stable")
    np.savez(tmp_path / "t.npz", times_s=t[order], afferent=i[order], n_afferents=N,
             duration_s=T * DT)
    return X


def test_raster_and_spike_times_are_the_same_input(tmp_path):
    X = _raster_and_times(tmp_path)
    r, t = RecordedSpikes(tmp_path / "r.npy", DT), RecordedSpikes(tmp_path / "t.npz", DT)
    assert isinstance(r._raster, np.memmap)          # streamed from disk, not loaded whole
    assert (r.n_steps, r.N) == (t.n_steps, t.N) == X.shape and t.merged == 0
    for k0, n in ((0, 3000), (0, 1), (17, 500), (2999, 1)):
        np.testing.assert_array_equal(r.chunk(k0, n), X[k0:k0 + n])
        np.testing.assert_array_equal(t.chunk(k0, n), X[k0:k0 + n])
    np.testing.assert_allclose(r.mean_rates(chunk_steps=333), X.sum(0) / (3000 * DT))
    with pytest.raises(RecordingError, match="holds 3000 steps"):
        r.chunk(2990, 20)


def test_two_spikes_in_one_bin_are_one_and_counted(tmp_path):
    np.savez(tmp_path / "m.npz", times_s=np.array([0.0001, 0.0002, 0.0011]),
             afferent=np.array([1, 1, 1]), n_afferents=2, duration_s=0.002)
    r = RecordedSpikes(tmp_path / "m.npz", DT)
    assert r.merged == 1
    np.testing.assert_array_equal(r.chunk(0, 4)[:, 1], [1, 0, 1, 0])


def test_spike_source_plays_the_recording_to_every_trial_chunk_invariant(spec):
    task = spec.build(3, 5)
    a = SpikeSource(task, 5)
    X1, Y1 = a.next(1000)
    X2, Y2 = a.next(3000)
    b = SpikeSource(task, 5)
    X, Y = b.next(4000)
    np.testing.assert_array_equal(np.concatenate([X1, X2]), X)
    np.testing.assert_array_equal(np.concatenate([Y1, Y2]), Y)
    rec = spec.inputs.chunk(0, 4000)
    for t in range(3):
        np.testing.assert_array_equal(X[:, t, :], rec)
    assert Y.sum() > 10                           # the teacher fires on the recording
    with pytest.raises(ValueError, match="compiled loop"):
        b.kernel_args()


def test_learning_engine_numba_equals_numpy_on_the_recording(spec):
    task = spec.build(2, 0)
    d = LE.design_for_config(load("loihi2"), task, spec.eta)
    a = LE.run(task, 3000, 0, d, backend="numba", chunk_steps=700)
    b = LE.run(task, 3000, 0, d, backend="numpy")
    np.testing.assert_array_equal(a.w_int, b.w_int)
    np.testing.assert_array_equal(a.events, b.events)
    assert a.counters == b.counters and a.events.sum() > 100
    assert not np.array_equal(a.w_int[0], a.w_int[1])      # trials differ in their weights


def test_lava_path2_equals_the_emulator_on_the_recording(spec):
    from lava_procs.learning_engine import run_lava_le
    task = spec.build(1, 0)
    d = LE.design_for_config(load("loihi2"), task, spec.eta)
    emu = LE.run(task, 300, 0, d, trials=np.array([0]))
    lava = run_lava_le(d, task, 300, 0, trial=0)
    np.testing.assert_array_equal(lava["w_int"], emu.w_int[0])
    np.testing.assert_array_equal(lava["x1"], emu.x_traces[0, 0])
    for f in ("carry", "gamma", "hbar", "a_m"):
        np.testing.assert_array_equal(lava["neuron"][f], getattr(emu.neuron, f)[0], err_msg=f)


def test_datapath_float_and_lava_path1_on_identical_recorded_spikes(spec):
    """The integer datapath (numba kernel and numpy steps) bit for bit, Lava path 1 equal to
    both, and the float64 run on the very same spikes (its teacher spike counts are the
    integer runs')."""
    from lava_procs import run_lava
    task = spec.build(2, 0)
    steps = 2500
    a = R.run("loihi2_ideal", task, steps, 0, eta=spec.eta, backend="numba", chunk_steps=900)
    b = R.run("loihi2_ideal", task, steps, 0, eta=spec.eta, backend="numpy")
    np.testing.assert_array_equal(a.w_int, b.w_int)
    np.testing.assert_array_equal(a.output_spikes, b.output_spikes)
    assert a.counters == b.counters and a.output_spikes.sum() >= 5          # measured 8
    fl = R.run("float64", task, steps, 0, eta=spec.eta, chunk_steps=700)
    np.testing.assert_array_equal(fl.teacher_spikes, a.teacher_spikes)
    assert np.abs(fl.w_final - task.w_init).max() > 0            # it learnt
    lava = run_lava("loihi2_ideal", task, 300, 0, trial=1, eta=spec.eta, backend="numba")
    em = R.run("loihi2_ideal", task, 300, 0, eta=spec.eta, trials=[1])
    np.testing.assert_array_equal(lava["w_int"], em.w_int[0])
    np.testing.assert_array_equal(lava["output_spikes"].sum(axis=0), em.output_spikes[0])
