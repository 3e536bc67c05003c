"""A recorded teacher: the teacher's spikes from a file, played to every engine.

The bundled ``recorded_teacher`` task's teacher was recorded (tasks/make_recorded_inputs.py)
from hidden weights with the realizable teacher's own draw (seed 2023, trial 0).  So a task
that knew those weights draws the very same teacher spikes, and every engine must learn the
same bits from the recording as from the draw: the recording is played, not re-drawn.
"""
from __future__ import annotations

import numpy as np
import pytest

from emulator import learning as LE
from emulator import metrics
from emulator import runner as R
from emulator.hwconfig import load
from emulator.spikes import SpikeSource
from emulator.task import Task
from emulator.taskfile import TASK_DIR, TaskError, load_task

TEACHER_SEED = 2023          # tasks/make_recorded_inputs.py


@pytest.fixture(scope="module")
def spec():
    return load_task("recorded_teacher")


def _pair(spec, n_trials=1):
    """(the recorded-teacher task, the same task with the hidden teacher weights)."""
    rec = spec.build(n_trials, 0)
    hidden = np.load(TASK_DIR / "recorded_teacher.npz")["hidden_weights"]
    drawn = Task(rates=rec.rates, w_init=rec.w_init,
                 w_target=np.broadcast_to(hidden, rec.w_init.shape).copy(),
                 inputs=rec.inputs, w_range=rec.w_range)
    return rec, drawn


def test_the_recording_is_the_drawn_teacher(spec):
    rec, drawn = _pair(spec)
    assert rec.w_target is None and rec.teacher_spikes.N == 2
    _, y_rec = SpikeSource(rec, 5, np.array([0])).next(rec.teacher_spikes.n_steps)
    _, y_drawn = SpikeSource(drawn, TEACHER_SEED, np.array([0])).next(rec.teacher_spikes.n_steps)
    np.testing.assert_array_equal(y_rec, y_drawn)
    assert y_rec.sum() == 590                                    # the file's spike count
    # chunking does not matter for a played recording
    src = SpikeSource(rec, 5, np.array([0]))
    parts = [src.next(n)[1] for n in (7, 3000, 12_993)]
    np.testing.assert_array_equal(np.concatenate(parts), y_rec[:16_000])


@pytest.mark.parametrize("config", ["loihi2_ideal", "loihi2"])
def test_integer_engines_learn_the_same_bits_from_the_recording(spec, config):
    """Datapath and learning engine: recorded teacher == drawn teacher, numba == numpy."""
    rec, drawn = _pair(spec)
    steps = 3000
    a = R.run(config, rec, steps, TEACHER_SEED, eta=spec.eta, backend="numba", chunk_steps=700)
    b = R.run(config, drawn, steps, TEACHER_SEED, eta=spec.eta, backend="numba")
    c = R.run(config, rec, steps, TEACHER_SEED, eta=spec.eta, backend="numpy")
    np.testing.assert_array_equal(a.w_int, b.w_int)
    np.testing.assert_array_equal(a.w_int, c.w_int)
    assert np.abs(a.w_final - rec.w_init).max() > 0               # it learnt


def test_float_reference_learns_the_same_from_the_recording(spec):
    rec, drawn = _pair(spec)
    a = R.run("float64", rec, 3000, TEACHER_SEED, eta=spec.eta, chunk_steps=900)
    b = R.run("float64", drawn, 3000, TEACHER_SEED, eta=spec.eta)
    np.testing.assert_array_equal(a.w_final, b.w_final)


def test_lava_paths_equal_the_emulator_on_the_recorded_teacher(spec):
    from lava_procs import run_lava
    from lava_procs.learning_engine import run_lava_le
    rec, _ = _pair(spec)
    d = LE.design_for_config(load("loihi2"), rec, spec.eta)
    emu = LE.run(rec, 300, 0, d, trials=np.array([0]))
    lava = run_lava_le(d, rec, 300, 0, trial=0)
    np.testing.assert_array_equal(lava["w_int"], emu.w_int[0])
    lava1 = run_lava("loihi2_ideal", rec, 300, 0, trial=0, eta=spec.eta, backend="numba")
    em1 = R.run("loihi2_ideal", rec, 300, 0, eta=spec.eta, trials=[0])
    np.testing.assert_array_equal(lava1["w_int"], em1.w_int[0])


def test_error_against_the_recorded_teacher(spec):
    """The hidden weights fit the recording better (3.44 Hz, about the teacher's own Poisson
    spread in 1-s bins) than the initial weights (12-13 Hz) or none; the result does not
    depend on the streaming chunk."""
    rec, _ = _pair(spec, n_trials=2)
    hidden = np.load(TASK_DIR / "recorded_teacher.npz")["hidden_weights"]
    W = np.stack([rec.w_init, np.zeros_like(rec.w_init), np.broadcast_to(hidden, rec.w_init.shape)])
    err = metrics.evaluator(rec, 0)(W)
    assert err.shape == (3, 2)
    assert np.all(err[2] < 0.5 * err[0]) and np.all(err[2] < 0.5 * err[1])
    assert err[2, 0] == pytest.approx(3.44, abs=0.01)
    np.testing.assert_allclose(metrics.recorded_teacher_rmse_hz(W, rec, chunk=2000), err,
                               rtol=1e-12)
    # a 2-s bin averages the teacher's Poisson spread down
    assert metrics.recorded_teacher_rmse_hz(W, rec, bin_steps=4000)[2, 0] < err[2, 0]


def _tree(**changes):
    import yaml
    tree = yaml.safe_load((TASK_DIR / "recorded_teacher.yaml").read_text())
    tree.update(changes)
    return tree


@pytest.mark.parametrize("changes,key", [
    ({"afferents": {"groups": [{"count": 40, "rate_hz": 10}]}}, "teacher.recorded"),
    ({"outputs": 3}, "teacher.recorded.file"),
    ({"teacher": {"recorded": {"file": "recorded_teacher.npz", "dt_s": 0.001}}},
     "teacher.recorded.dt_s"),
    ({"teacher": {"recorded": {"file": "nothing.npz", "dt_s": 0.0005}}}, "teacher.recorded.file"),
    ({"teacher": {"recorded": {"file": "recorded_teacher.npz", "dt_s": 0.0005},
                  "weights": {"constant": 0.0}}}, "teacher"),
    ({"test_set": {"samples": 50}}, "test_set.samples"),
    ({"test_set": {"bin_s": 100.0}}, "test_set.bin_s"),
    ({"expected_weight_range": "teacher"}, "expected_weight_range"),
])
def test_broken_recorded_teacher_is_one_line_naming_the_key(changes, key):
    from emulator.taskfile import validate_task
    with pytest.raises(TaskError) as exc:
        validate_task(_tree(**changes), "<test>", TASK_DIR)
    msg = str(exc.value)
    assert "\n" not in msg and f"'{key}'" in msg, msg


def test_run_on_the_recorded_teacher_reports_it(tmp_path):
    import json

    from natgrad.cli import main
    out = tmp_path / "rep"
    assert main(["run", "--task", "recorded_teacher", "--steps", "2000", "--trials", "2",
                 "--lava-steps", "0", "--quiet", "--out", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    task = rep["provenance"]["task"]
    assert task["name"] == "recorded_teacher" and task["recorded_teacher"]["steps"] == 40_000
    c = rep["curves"]
    assert c["float"]["rate_rmse_hz"][0] == pytest.approx(12.6, abs=0.1)  # the initial weights
    assert c["euclid_float"]["rate_rmse_hz"] is not None
