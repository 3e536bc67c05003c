"""natgrad deploy on the learning-engine config writes a folder from which
lava_procs.deployment builds the Lava network alone, and that network under Loihi2SimCfg
reproduces the emulator bit for bit."""
import subprocess
import sys

import numpy as np
import pytest

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
                           "--out", str(out), "--afferents", "16", "--seed", "3",
                           "--trials", "1", "--eta", "5.5e-4", *extra],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out


def test_deploy_build_from_files_run_equals_emulator(tmp_path):
    out = _deploy(tmp_path)
    assert sorted(p.name for p in out.iterdir()) == ["deploy.yaml", "design.json",
                                                     "manifest.json", "network.json"]
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


def _truncate(f):
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _empty(f):
    f.write_text("")


def _edit_rule(f):
    f.write_text(f.read_text().replace("dw: ", "dw: 2*", 1))


def _weights_consistent_edit(f):
    # an edit that keeps each file valid on its own: network.json's weights changed, and the
    # manifest updated to match, so only the cross-file check can notice
    import hashlib
    import json
    net = json.loads(f.read_text())
    net["w_init_int"][0][0] += 1
    f.write_text(json.dumps(net, indent=1))
    m = json.loads((f.parent / "manifest.json").read_text())
    m["files"]["network.json"] = hashlib.sha256(f.read_bytes()).hexdigest()
    (f.parent / "manifest.json").write_text(json.dumps(m))


@pytest.mark.parametrize("name,damage,reason", [
    ("deploy.yaml", _truncate, "changed since natgrad deploy wrote it"),
    ("deploy.yaml", _empty, "changed since natgrad deploy wrote it"),
    ("deploy.yaml", _edit_rule, "changed since natgrad deploy wrote it"),
    ("design.json", _truncate, "changed since natgrad deploy wrote it"),
    ("network.json", _weights_consistent_edit, "disagree with design.json / network.json"),
    ("manifest.json", lambda f: f.unlink(), "missing"),
])
def test_build_refuses_a_folder_that_is_not_what_it_says(tmp_path, name, damage, reason):
    """A truncated, emptied or edited file of a deploy folder (deploy.yaml
    included: it is a record, never read to build) and files that disagree with each other
    make build_from_deployment refuse with one line naming the file; the intact folder
    verifies."""
    from emulator.learning.deployment import DeploymentError, verify_deployment
    from lava_procs.deployment import build_from_deployment
    out = _deploy(tmp_path)
    assert verify_deployment(out)["files"].keys() == {"deploy.yaml", "design.json",
                                                       "network.json"}
    assert (out / "deploy.yaml").read_text().startswith("# RECORD ONLY")
    damage(out / name)
    with pytest.raises(DeploymentError) as exc:
        build_from_deployment(out)
    msg = str(exc.value)
    assert "\n" not in msg and reason in msg, msg
    assert name in msg or (name == "network.json" and "deploy.yaml" in msg)
