"""One design from run to deploy: ``natgrad run --out`` writes the deployment of exactly the
design it judged, with its digest in report.json, and ``natgrad deploy`` with the same
--config, --seed, --trials, --eta and --weight-range writes the same bits."""
import json

from natgrad.cli import main

RUN = ["run", "--steps", "400", "--trials", "2", "--lava-steps", "0", "--quiet", "--seed", "5"]


def test_learning_engine_run_deploys_what_it_judged(tmp_path, capsys):
    for eta in (None, "5.5e-4"):
        tag = "default" if eta is None else "paper"
        extra = [] if eta is None else ["--eta", eta]
        rep_dir, dep = tmp_path / f"rep-{tag}", tmp_path / f"dep-{tag}"
        assert main(RUN + extra + ["--out", str(rep_dir)]) == 0
        assert main(["deploy", "--config", "loihi2", "--seed", "5", "--trials", "2",
                     "--out", str(dep)] + extra) == 0
        rep = json.loads((rep_dir / "report.json").read_text())
        judged = rep_dir / "deployment"
        for name in ("design.json", "network.json"):
            assert (judged / name).read_bytes() == (dep / name).read_bytes(), (tag, name)
        manifest = json.loads((dep / "manifest.json").read_text())
        assert rep["deployment"]["design_digest"] == manifest["design_digest"]
        assert rep["eta_code"]["approx"] == (2.2e-3 if eta is None else 5.5e-4)
        assert "The design judged, as a deployment" in (rep_dir / "report.md").read_text()
    # the learning rate enters the design: the two deployments differ
    assert ((tmp_path / "dep-default" / "design.json").read_bytes()
            != (tmp_path / "dep-paper" / "design.json").read_bytes())
    from lava_procs.deployment import build_from_deployment
    build_from_deployment(tmp_path / "rep-default" / "deployment")     # verifies and builds


def test_datapath_run_deploys_what_it_judged(tmp_path, capsys):
    rep_dir, dep = tmp_path / "rep", tmp_path / "deploy.yaml"
    assert main(RUN + ["--config", "fxp16", "--out", str(rep_dir)]) == 0
    assert main(["deploy", "--config", "fxp16", "--seed", "5", "--out", str(dep)]) == 0
    assert (rep_dir / "deploy.yaml").read_bytes() == dep.read_bytes()
    rep = json.loads((rep_dir / "report.json").read_text())
    import hashlib
    assert rep["deployment"]["design_digest"] == hashlib.sha256(dep.read_bytes()).hexdigest()


def test_eta_is_checked(capsys):
    import pytest
    for bad in ("0", "-1e-3", "nan", "2", "x"):
        with pytest.raises(SystemExit) as exc:
            main(["run", "--eta", bad])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "--eta" in err and err.count("\n") == 1


def test_weight_range_reaches_run_and_deploy_alike(tmp_path, capsys):
    """--weight-range 0.04 changes the design (w_frac 13 -> 11) in run and deploy alike, and
    run's report tells how to deploy the same design."""
    rep_dir, dep = tmp_path / "rep", tmp_path / "dep"
    assert main(RUN + ["--weight-range", "0.04", "--out", str(rep_dir)]) == 0
    rep = json.loads((rep_dir / "report.json").read_text())
    assert "--weight-range 0.04" in rep["deployment"]["same_as"]
    assert main(["deploy", "--config", "loihi2", "--seed", "5", "--trials", "2",
                 "--weight-range", "0.04", "--out", str(dep)]) == 0
    for name in ("design.json", "network.json"):
        assert (rep_dir / "deployment" / name).read_bytes() == (dep / name).read_bytes(), name
    from emulator.learning.deployment import read_design
    assert read_design(dep).w_frac == 11
