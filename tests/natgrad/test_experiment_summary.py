"""What ``natgrad experiment`` concludes, on constructed inputs: the chip's natural-vs-Euclid
comparison is three-valued and says which measure decided it, and the summary page renders
pass, fail, not resolved and "no target" as such, with |x| kept as written."""
import numpy as np

from natgrad.experiments.fig3 import chip_rule_comparison
from natgrad.experiments.summary import write_summary

T_END = 300.0


def test_chip_comparison_natural_wins_when_both_paired_intervals_agree():
    kl_n = np.array([1.0, 1.1, 0.9, 1.2, 1.0, 0.95, 1.05, 1.1]) * 1e-4
    c = chip_rule_comparison(kl_n, 2 * kl_n, [100, 120, 80, 140, 100, 90, 110, 120],
                             [200, 220, 190, 240, 210, 200, 230, 220], T_END)
    assert c["verdict"] == "natural wins"
    assert c["late_kl"] == c["threshold_time"] == "natural better"
    assert np.isclose(c["late_kl_ratio_geometric_mean"], 0.5)
    assert c["natural_first_fraction"] == 1.0


def test_chip_comparison_not_resolved_names_the_undecided_measure():
    # the small Fig 3F run's shape: the late KL clearly lower, the threshold times a wash
    kl_n = np.array([1.0, 1.1, 0.9, 1.2, 1.0, 0.95, 1.05, 1.1]) * 1e-4
    t_n = [100, 200, 80, 140, None, 90, 210, 120]
    t_e = [120, 180, 100, 120, None, 110, 190, 140]
    c = chip_rule_comparison(kl_n, 1.6 * kl_n, t_n, t_e, T_END)
    assert c["verdict"] == "not resolved"
    assert c["late_kl"] == "natural better" and c["threshold_time"] == "not resolved"
    # a trial that never reached the threshold counts as the run's end for both: difference 0
    assert c["t_rmse_below_natural_minus_euclid_s"]["n"] == 8


def test_chip_comparison_euclid_wins():
    kl_e = np.array([1.0, 1.1, 0.9, 1.2, 1.0, 0.95]) * 1e-4
    c = chip_rule_comparison(3 * kl_e, kl_e, [200] * 6, [200] * 6, T_END)
    assert c["verdict"] == "euclid wins" and c["late_kl"] == "Euclid better"


def test_summary_renders_each_verdict_and_keeps_pipes(tmp_path):
    def angle_target(ok):
        return {"what": "|angle(chip) - angle(float)| [deg]", "value": 1.0, "target": 3.0,
                "pass": ok, "margin": -2.0}
    results = {
        "fig3de": {"effect": {"paths": {"approx": {"angle_to_straight_line_deg": 7.7},
                                        "euclid": {"angle_to_straight_line_deg": 29.1}}},
                   "effect_config": {"targets": [angle_target(True)]}},
        "fig4": {"effect": {"approx": {"max_rel_deviation_from_flat": 1e-13}},
                 "effect_config": {}},
        "fig12": {"effect": {"mean_angles_deg": {}},
                  "effect_config": {"targets": [angle_target(True),
                                                {"what": "natural beats Euclid", "value": "x",
                                                 "pass": None}]}},
    }
    rec = write_summary(tmp_path, results, "loihi2", {"scale": "small", "seed": 0, "wall_s": 1})
    md = (tmp_path / "summary.md").read_text()
    assert r"\|angle(chip) - angle(float)\| [deg]" in md and "/angle" not in md
    rows = {r["figure"]: r["verdict"] for r in rec["rows"]}
    assert rows == {"fig3de": True, "fig4": None, "fig12": "not resolved"}
    assert "**PASS**" in md and "**no target (shown for context)**" in md
    assert "**NOT RESOLVED**" in md and "natural beats Euclid = x: NOT RESOLVED" not in md
    assert "natural beats Euclid: NOT RESOLVED (x)" in md
    assert "-: -" not in md
    assert rec["all_pass"] is False


def test_a_target_with_an_interval_is_pass_fail_or_not_resolved():
    """For the experiments: Fig 3F's late-KL ratio (measured 1.22 with a
    per-trial 95 % interval of +-0.15 over 8 trials, target 1.10) is not resolved, not a
    fail; wholly above or below the target it fails or passes; without an interval the
    value alone decides, as before."""
    from natgrad.experiments.stats import verdict
    v = verdict(1.215, 1.10, "lower", "late-KL ratio", "blame", ci=0.149)
    assert v["pass"] is None and "straddles 1.1" in v["resolve"] and "2x the trials" in v["resolve"]
    assert verdict(1.215, 1.10, "lower", "x", ci=0.05)["pass"] is False
    assert verdict(1.02, 1.10, "lower", "x", ci=0.05)["pass"] is True
    assert verdict(0.9, 0.85, "higher", "x", ci=0.1)["pass"] is None
    assert verdict(1.215, 1.10, "lower", "x")["pass"] is False
    from natgrad.experiments.summary import _targets_text
    text = _targets_text([v])
    assert "= 1.22 +- 0.149 (target 1.1): NOT RESOLVED; the 95 % interval" in text
