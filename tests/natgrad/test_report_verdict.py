"""The report's verdict: its keys, and that it flips when a config is made
much coarser.  Fig 3 task, 4 trials, 20 s at the scaled learning rates, seed 3."""
import numpy as np

from emulator.hwconfig import load
from natgrad.main_job import run_main_job


def _verdict(cfg, steps=40_000):
    rep = run_main_job(cfg, steps, 3, trials=4, lava_steps=0, progress=False)
    return rep, rep["verdict"]


def test_stock_fxp32_post_range_is_found_as_the_bottleneck():
    # at the scaled learning rates (x4) fxp32's post factor S32.38 (|P| < 2^-7) clips at
    # teacher spikes (P ~ eta gamma_s ~ 2.2e-3 * 4): the verdict must say so, not blame noise
    rep, v = _verdict(load("fxp32"))
    for key in ("tracks_float", "tolerance_hz", "excess_hz", "bottleneck", "advice",
                "excess_ci95_hz", "excess_pct_of_learned", "evidence"):
        assert key in v, key
    assert rep["counters"]["post"]["saturation"] > 0
    assert v["bottleneck"] == "post range" and "widen post" in v["advice"]


def test_verdict_keys_and_flip_on_a_much_coarser_config():
    fine = load("fxp32").with_overrides(**{"post.frac": 34})     # post no longer clips
    rep, v = _verdict(fine)
    # fxp32 with room for the post factor: the learning curve is float's within tolerance
    # (measured excess -0.0002 Hz against a 0.1 Hz tolerance)
    assert v["tracks_float"] is True, v
    assert abs(v["excess_hz"]) < v["tolerance_hz"]
    # the same config with 6-bit weights (LSB 2^-... a coarse grid): the verdict flips, and
    # it blames the weights (almost every update rounds to zero)
    coarse = fine.with_overrides(**{"weights.bits": 6, "weights.frac": 8, "weights.extra_frac": 0,
                                    "weights.rounding": "half_even"})
    rep_c, vc = _verdict(coarse)
    assert vc["tracks_float"] is False, vc
    assert vc["excess_hz"] > vc["tolerance_hz"]
    assert vc["bottleneck"] == "weights", vc["ranking"][:3]
    assert rep_c["updates"]["magnitude_share_below_half_lsb"] > 0.9
    # the local rounding error of sigma is far below the trajectory error for fxp32
    sig = rep["variables"]["sigma"]
    assert sig["local"]["rms_lsb"] < sig["trajectory"]["rms_lsb"]
    assert np.isfinite(rep["late_window"]["float_rmse_hz"]["mean"])
    assert rep["provenance"]["git_commit"]


def test_verdict_knows_its_uncertainty():
    """Three answers.  One trial has no interval: not resolved.  An interval
    that straddles the tolerance (a run with --steps 200000 --trials 2: +0.134 +- 0.37 Hz
    against 0.278 Hz) is not resolved, and the trial count that would resolve it is named
    (n (ci / |tol - |excess||)^2 = 2 (0.37 / 0.144)^2 -> 14).  Intervals wholly inside or
    outside the tolerance give "tracks" / "does not track"."""
    from natgrad.analysis import resolve_verdict
    status, why = resolve_verdict(0.087, float("nan"), 0.1, 1)
    assert status == "not resolved" and "--trials" in why
    status, why = resolve_verdict(0.134, 0.37, 0.278, 2)
    assert status == "not resolved" and "about 14 trials" in why, why
    assert resolve_verdict(0.06, 0.12, 0.715, 4)[0] == "tracks"
    assert resolve_verdict(-0.06, 0.12, 0.1, 4)[0] == "not resolved"
    assert resolve_verdict(0.5, 0.12, 0.3, 4)[0] == "does not track"
    assert resolve_verdict(-0.5, 0.12, 0.3, 4)[0] == "does not track"
    # the edge: an interval touching the tolerance from inside still tracks
    assert resolve_verdict(0.2, 0.0999, 0.3, 4)[0] == "tracks"


def test_verdict_from_curves_says_not_resolved_for_one_trial():
    from natgrad.analysis import verdict
    t = np.arange(8.0)
    fl = np.linspace(3.0, 1.0, 8)[:, None]
    v = verdict({"t_s": t, "float_trials": fl, "chip_trials": fl + 0.05}, {}, {})
    assert v["status"] == "not resolved" and v["tracks_float"] is None and v["n_trials"] == 1
    four = np.repeat(fl, 4, axis=1)
    v = verdict({"t_s": t, "float_trials": four,
                 "chip_trials": four + np.array([0.04, 0.05, 0.06, 0.05])}, {}, {})
    assert v["status"] == "tracks" and v["tracks_float"] is True


def test_one_trial_prints_why_it_has_no_interval(tmp_path, capsys):
    """One trial has no spread: the console and report.md say so instead of printing
    '+-nan' (the verdict is 'not resolved', with the trials that would resolve it)."""
    from natgrad.cli import main
    assert main(["run", "--steps", "400", "--trials", "1", "--lava-steps", "0", "--quiet",
                 "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    md = (tmp_path / "r" / "report.md").read_text()
    for text in (out, md):
        assert "no interval: one trial has no spread" in text
        assert "+-nan" not in text and "+- nan" not in text
    assert "NOT RESOLVED" in out and "run at least 4 trials" in out
