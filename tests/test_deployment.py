"""natgrad deploy on the learning-engine config writes a folder from which
lava_procs.deployment builds the Lava network alone, and that network under Loihi2SimCfg
reproduces the emulator bit for bit (issue 11 item 5)."""
import subprocess
import sys

import numpy as np

import emulator
from emulator import learning
from emulator.learning.deployment import to_json
from emulator.learning.deployment import read_design
from emulator.spikes import SpikeSource
from emulator.task import fig3_task
from lava_procs.deployment import run_deployment


def _deploy(tmp_path, *extra):
    out = tmp_path / "dep"
    proc = subprocess.run([sys.executable, "-m", "natgrad.cli", "deploy", "--config", "loihi2",
                           "--out", str(out), "--afferents", "16", "--seed", "3", *extra],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out


def test_deploy_build_from_files_run_equals_emulator(tmp_path):
    out = _deploy(tmp_path)
    assert sorted(p.name for p in out.iterdir()) == ["deploy.yaml", "design.json", "network.json"]
    steps, seed = 2000, 3
    task = fig3_task(n_trials=1, N=16, seed=seed)
    X, Y = SpikeSource(task, seed, np.array([0])).next(steps)
    lava = run_deployment(out, X[:, 0, :], Y[:, 0, :])
    emu = emulator.run("loihi2", task, steps, seed, trials=[0])
    assert to_json(lava["design"]) == to_json(emu.state.design)   # the files hold the design
    np.testing.assert_array_equal(lava["w_int"], emu.w_int[0])
    np.testing.assert_array_equal(lava["x1"], emu.state.x_traces[0, 0])
    np.testing.assert_array_equal(lava["x2"], emu.state.x_traces[0, 1])
    np.testing.assert_array_equal(lava["tag_1"][0], read_design(out).tags)
    for name in ("a_m", "a_s", "v", "gamma", "hbar", "sigma", "err", "p", "counts"):
        np.testing.assert_array_equal(lava["neuron"][name], getattr(emu.state.neuron, name)[0],
                                      err_msg=name)
    # learning happened: the weights moved by whole LSBs on many synapses
    w0 = learning.quantize_weights(read_design(out), task.w_init[0])
    assert np.count_nonzero(lava["w_int"] != w0) > 4


def test_deploy_refuses_a_non_empty_folder(tmp_path):
    out = tmp_path / "dep"
    out.mkdir()
    (out / "x").write_text("keep")
    proc = subprocess.run([sys.executable, "-m", "natgrad.cli", "deploy", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "not an empty folder" in proc.stderr
    assert (out / "x").read_text() == "keep"
