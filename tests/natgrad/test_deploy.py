"""natgrad deploy: the chip integers of the discretize step, written as YAML."""
import base64
import math
import zlib

import numpy as np
import pytest
import yaml

from emulator.task import fig3_task
from natgrad.cli import main


def _exit(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    return exc.value.code, capsys.readouterr()


@pytest.fixture(scope="module")
def loihi2(tmp_path_factory):
    out = tmp_path_factory.mktemp("dep") / "deploy.yaml"
    assert main(["deploy", "--config", "hw_configs/loihi2_ideal.yaml", "--out", str(out)]) == 0
    return yaml.safe_load(out.read_text())


def test_loads_back_and_decays_exact(loihi2):
    dt, tau_m, tau_s = 0.0005, 0.010, 0.003
    tr = loihi2["traces"]
    assert tr["decay_frac"] == 12
    assert tr["decay_m"] == round(math.exp(-dt / tau_m) * 2**12) == 3896   # 4096 * 0.951229
    assert tr["decay_s"] == round(math.exp(-dt / tau_s) * 2**12) == 3467
    assert tr["impulse"] == 16 and tr["max"] == 127
    assert all(isinstance(v, int) for v in (tr["decay_m"], tr["decay_s"], tr["impulse"]))


def test_luts(loihi2):
    sig = loihi2["luts"]["sigmoid"]
    assert sig["lut_bits"] == 8 and len(sig["values"]) == 2**8 + 1 == sig["entries"]
    v = np.array(sig["values"])
    assert v[0] >= 0 and v[-1] <= 2**sig["frac"] and np.all(np.diff(v) >= 0)
    assert sig["axis"]["lo"] == -128.0 and sig["axis"]["step"] == 1.0
    g = loihi2["luts"]["gamma_s"]
    assert g["encoding"] == "list" and np.array(g["values"]).shape == (64, 64) == tuple(g["shape"])
    assert g["axes"]["m"]["lo"] == -32.0 and g["axes"]["v"]["n"] == 64


def test_constants_round_trip(loihi2):
    mb = loihi2["constants"]["mant_bits"]
    seen = 0
    for name, c in loihi2["constants"].items():
        if isinstance(c, dict) and "mant" in c:
            assert abs(c["mant"]) < 2**mb
            assert abs(c["mant"] * 2.0 ** -c["shift"] - c["float"]) <= 2.0 ** -(mb - 1) * abs(c["float"])
            assert loihi2["discretize_info"][name]["rel_err"] == c["rel_err"] <= 2.0 ** -(mb - 1)
            seen += 1
    assert seen == 5   # usp_scale, c_w, phi_max_dt, eta, inv_c_eps
    info = loihi2["discretize_info"]
    assert info["decay_m"]["realised"] == 3896 / 4096
    assert info["homo_c_eps_over_r"]["max_rel_err"] < 2.0 ** -(mb - 1)


def test_weights_and_rule(loihi2):
    w = loihi2["weights"]
    task = fig3_task(n_trials=1, N=100, seed=0)
    mant = np.array(w["mantissas"])
    assert w["exponent"] == -14 and mant.shape == (1, 100)
    assert np.all(np.abs(mant * 2.0 ** w["exponent"] - task.w_init[0]) <= 2.0 ** (w["exponent"] - 1))
    rule = loihi2["learning_rule"]
    from emulator.hwconfig import load
    from emulator.learning import design_for_config
    from emulator.reference import ETA_CODE
    # the bundled loihi2 design, which Lava runs bit-exactly in tests/lava_procs/test_lava_path2.py,
    # with its tags: the carry in dw, the graded products in dd
    # at natgrad run's learning rate (deploy's default, so that the two agree)
    from natgrad.protocol import default_eta
    assert loihi2["model"]["eta_code"] == default_eta() == 4 * ETA_CODE["approx"]
    d = design_for_config(load("loihi2"), task, default_eta())
    assert rule["rule"] == d.rule and rule["rule_dd"] == d.rule_dd
    assert "y0*t*x1*y1" in rule["rule_dd"] and "u0*t*x1*y1" in rule["rule_dd"]
    assert rule["third_factors"]["y1"] == "32 L"
    assert len(rule["tags"]["values"]) == 100 and max(rule["tags"]["values"]) <= 255


def test_compact_table_and_no_rule_for_generic(tmp_path):
    out = tmp_path / "l1.yaml"
    assert main(["deploy", "--config", "loihi1", "--out", str(out), "--lut-format", "compact"]) == 0
    rec = yaml.safe_load(out.read_text())
    g = rec["luts"]["gamma_s"]
    table = np.frombuffer(zlib.decompress(base64.b64decode(g["data"])), "<u4").reshape(g["shape"])
    assert table.shape == (32, 32) and table.max() <= 2 ** g["bits"] - 1
    assert "learning_rule" not in rec


@pytest.mark.parametrize("make_out, needle", [
    (lambda p: p / "missing" / "d.yaml", "cannot write"),
    (lambda p: p, "is a folder"),
])
def test_unwritable_out_exit_2(tmp_path, capsys, make_out, needle):
    # a datapath config writes one YAML file: a folder as --out is refused (a learning-engine
    # deployment is a folder: tests/lava_procs/test_deployment.py)
    out = make_out(tmp_path)
    code, cap = _exit(["deploy", "--config", "loihi2_ideal", "--out", str(out)], capsys)
    lines = cap.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and needle in lines[0] and "Traceback" not in cap.err
    assert [p.name for p in tmp_path.iterdir()] == []


def test_bad_config_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nkind: fixed\n")
    out = tmp_path / "d.yaml"
    code, cap = _exit(["deploy", "--config", str(bad), "--out", str(out)], capsys)
    assert code == 2 and "missing key 'traces'" in cap.err and not out.exists()
    code, cap = _exit(["deploy", "--rates", "10,x", "--out", str(out)], capsys)
    assert code == 2 and "--rates" in cap.err and not out.exists()


@pytest.mark.parametrize("config", ["loihi2_ideal", "fxp16"])
def test_deploy_round_trips_bit_for_bit(tmp_path, config):
    """deploy.yaml read back (natgrad.deploy.load_deployment: integers only, nothing
    recomputed from floats) drives the emulator to exactly the run of the config itself."""
    from emulator import datapath
    from emulator import runner as R
    from emulator.kernels import run_chunk
    from emulator.spikes import SpikeSource
    from emulator.task import fig3_task
    from natgrad.deploy import load_deployment

    out = tmp_path / "deploy.yaml"
    assert main(["deploy", "--config", config, "--out", str(out), "--seed", "4"]) == 0
    d, w_int = load_deployment(out)
    task = fig3_task(n_trials=1, N=100, seed=4)
    steps = 3000
    state = datapath.init_state(d, w_int * 2.0 ** -d.w_frac)
    X, Y = SpikeSource(task, 4).next(steps)
    rec = R.record_arrays(0, 1, 1, 100)
    run_chunk(d, state, X, Y, 4, 0, rec, 0, np.zeros((1, 1), np.int64))
    from natgrad.protocol import default_eta      # deploy's default: natgrad run's rate
    ref = R.run(config, task, steps, 4, eta=default_eta()).state
    for field in ("acc", "a_m", "a_s", "v", "gamma", "post", "counts", "first"):
        np.testing.assert_array_equal(getattr(state, field), getattr(ref, field), err_msg=field)
    assert np.any(state.acc != w_int)


def test_edited_datapath_deploy_yaml_is_refused_with_one_line(tmp_path, capsys):
    """The datapath deploy.yaml is a record with its content digest in the
    header; load_deployment refuses a truncated, emptied or edited copy with one line."""
    from natgrad.cli import UsageError
    from natgrad.deploy import load_deployment
    out = tmp_path / "deploy.yaml"
    assert main(["deploy", "--config", "fxp16", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# RECORD") and "# content-sha256: " in text
    load_deployment(out)                                   # intact: reads
    body_at = text.index("\n", text.index("# content-sha256: ")) + 1
    for bad in (text[: len(text) // 2], "", text[:body_at] + text[body_at:].replace("decay_m: ", "decay_m: 1", 1)):
        out.write_text(bad)
        with pytest.raises(UsageError) as exc:
            load_deployment(out)
        assert "\n" not in str(exc.value) and str(out) in str(exc.value)
