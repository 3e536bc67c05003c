"""natgrad sweep: grid, knee detection, executor independence, one-line errors."""
import json
import math

import pytest

from emulator.hwconfig import load
from natgrad.cli import main
from natgrad.sweep import build_grid, knee, parse_vary

SWEEP_KEYS = {"base_config", "vary", "vary_keys", "seeds", "steps", "trials", "N", "dt_s", "task",
              "tolerance_hz", "tolerance_rule", "float", "points", "recommended", "provenance"}
POINT_KEYS = {"values", "overrides", "rate_rmse_hz", "excess_hz", "w_rmse_vs_float", "per_seed"}


def _exit(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    return exc.value.code, capsys.readouterr()


# ----------------------------------------------------------------------------- knee
def test_knee_known_answers():
    widths = [6, 7, 8, 9, 10, 11, 12]
    excess = [3.0, 1.2, 0.45, 0.6, 0.3, 0.1, 0.05]      # 9 breaks the run: answer is 10
    assert knee(widths, excess, 0.5) == 10
    assert knee(widths, excess, 0.7) == 8
    assert knee(widths, excess, 5.0) == 6
    assert knee(widths, excess, 0.01) is None           # even the widest is out of tolerance
    assert knee(widths[::-1], excess[::-1], 0.5) == 10  # order of the input does not matter
    # a coarse format that learns faster than float is a deviation too (|excess|)
    assert knee([4, 8, 12], [-2.0, -0.2, 0.0], 0.5) == 8
    assert knee([4, 8, 12], [0.1, float("nan"), 0.0], 0.5) == 12
    assert knee([], [], 0.5) is None


def _summary(table, seeds, tol=0.5, spread=0.02):
    """summarize() on constructed results: excess ``table[(w, t)]`` + a per-seed offset of
    ``spread * (seed - mean)``."""
    from natgrad.sweep import summarize
    varies = [("weight_bits", [8, 12]), ("trace_bits", [6, 10])]
    grid = [{"values": {"weight_bits": w, "trace_bits": t}, "overrides": {}}
            for w in (8, 12) for t in (6, 10)]
    import numpy as np
    w0 = np.zeros((1, 1, 3))
    fl = [{"rate_rmse_hz": [1.0], "initial_rate_rmse_hz": [2.0], "w_final": w0} for _ in seeds]
    mid = np.mean(seeds)
    fx = [{"rate_rmse_hz": [1.0 + table[g["values"]["weight_bits"], g["values"]["trace_bits"]]
                            + spread * (s - mid)],
           "w_final": w0, "saturation": 0, "weights_underflow": 0} for g in grid for s in seeds]
    return summarize(grid, list(seeds), fx, fl, varies, tol)


def test_recommended_uses_other_fields_at_max(tmp_path):
    """summarize() slices the grid at the other field's max before calling knee()."""
    # excess by (w, t): only the t = 10 row and the w = 12 column matter
    table = {(8, 6): 9.0, (8, 10): 0.2, (12, 6): 3.0, (12, 10): 0.0}
    s = _summary(table, range(4))
    assert s["recommended"] == {"weight_bits": 8, "trace_bits": 10}
    assert s["points"][1]["excess_hz"]["mean"] == pytest.approx(0.2)
    assert s["points"][1]["status"] == "tracks" and s["points"][0]["status"] == "does not track"


def test_minimum_width_needs_a_resolved_interval():
    """The minimum width is the smallest whose interval lies inside the
    tolerance.  (8, 10) at 0.45 +- ~0.2 Hz straddles 0.5 Hz: not resolved, so the answer is
    12, not 8; with one seed there is no interval and no width is recommended, with why."""
    table = {(8, 6): 9.0, (8, 10): 0.45, (12, 6): 3.0, (12, 10): 0.0}
    s = _summary(table, range(4), spread=0.2)
    p8 = s["points"][1]
    assert p8["status"] == "not resolved" and "seeds (--seeds)" in p8["resolve"]
    assert s["recommended"]["weight_bits"] == 12
    one = _summary(table, [0])
    assert one["recommended"] == {"weight_bits": None, "trace_bits": None}
    assert "not resolved" in one["recommended_why"]["weight_bits"]
    # the plain knee without intervals would have said 8
    from natgrad.sweep import knee
    assert knee([8, 12], [0.45, 0.0], 0.5) == 8
    assert knee([8, 12], [0.45, 0.0], 0.5, [0.2, 0.01]) == 12


# ----------------------------------------------------------------------------- grid
def test_friendly_names_keep_the_range():
    base = load("fxp16")                       # weights S16.20, traces U16.12
    _, vals = parse_vary("weight_bits=8:16:4")
    assert vals == [8, 12, 16]
    grid = build_grid(base, [("weight_bits", vals), ("trace_bits", [6])])
    for g in grid:
        ov = g["overrides"]
        assert ov["weights.bits"] - ov["weights.frac"] == 16 - 20   # max |w| unchanged
        assert ov["traces.bits"] - ov["traces.frac"] == 16 - 12     # max trace unchanged
    assert build_grid(base, [("potential.bits", [12])])[0]["overrides"] == {"potential.bits": 12}


def test_unknown_vary_field_exit_2(capsys):
    code, cap = _exit(["sweep", "--config", "fxp16", "--vary", "wieght_bits=6:8"], capsys)
    lines = cap.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in cap.err
    assert "unknown field 'wieght_bits'" in lines[0]
    assert "weight_bits" in lines[0] and "trace_bits" in lines[0] and "potential.bits" in lines[0]


@pytest.mark.parametrize("args, needle", [
    (["--steps", "-5"], "--steps must be an integer >= 1 (got -5)"),
    (["--seeds", "0"], "--seeds must be an integer >= 1"),
    (["--config", "/nonexistent.yaml"], "/nonexistent.yaml: cannot read config"),
    (["--config", "float64"], "needs a fixed-point or learning-engine config"),
    (["--vary", "weight_bits=9:7"], "LO must be <= HI"),
    (["--vary", "weight_bits=a:b"], "expected integers"),
    (["--vary", "weight_bits=60:60"], "key 'weights.bits' must be an integer in [2, 48] (got 60)"),
    (["--vary", "trace_bits=2:3"], "key 'traces.frac' must be an integer in [0, 31] (got -2)"),
    (["--tolerance", "-1"], "--tolerance must be a number >= 0"),
])
def test_bad_input_exit_2(args, needle, capsys, tmp_path):
    base = ["sweep", "--config", "fxp16", "--vary", "usp_bits=16:16", "--out", str(tmp_path / "o")]
    code, cap = _exit(base + args, capsys)
    lines = cap.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and needle in lines[0], cap.err
    assert "Traceback" not in cap.err
    assert not (tmp_path / "o").exists()


def test_unwritable_out_exit_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, cap = _exit(["sweep", "--vary", "weight_bits=8:9", "--steps", "10",
                       "--out", str(blocker / "sub")], capsys)
    assert code == 2 and "not a writable folder" in cap.err and len(cap.err.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- executors
def _numbers(rep):
    return {k: rep[k] for k in ("float", "points", "recommended", "vary", "seeds", "steps")}


@pytest.mark.timeout(180)
def test_serial_local_dask_identical(tmp_path, capsys):
    """2 widths x 2 seeds: the serial loop, the process pool and a Dask LocalCluster give
    the same numbers, bit for bit."""
    common = ["sweep", "--config", "loihi2_ideal", "--vary", "weight_bits=7:9:2", "--seeds", "2",
              "--steps", "400", "--trials", "2", "--quiet"]
    reps = {}
    for ex in ("serial", "local", "dask"):
        out = tmp_path / ex
        assert main(common + ["--executor", ex, "--out", str(out)]) == 0
        reps[ex] = json.loads((out / "sweep.json").read_text())
        assert (out / "sweep_weight_bits.png").stat().st_size > 0
        assert not [p for p in out.iterdir() if p.name.startswith(".")]   # no temp left
    capsys.readouterr()
    assert _numbers(reps["serial"]) == _numbers(reps["local"]) == _numbers(reps["dask"])

    rep = reps["serial"]
    assert set(rep) >= SWEEP_KEYS
    assert rep["vary"] == {"weight_bits": [7, 9]} and rep["seeds"] == [0, 1]
    assert rep["vary_keys"] == {"weight_bits": ["weights.bits", "weights.frac"]}
    assert len(rep["points"]) == 2 and len(rep["float"]["per_seed"]) == 2
    for p in rep["points"]:
        assert set(p) >= POINT_KEYS and len(p["per_seed"]) == 2
        assert p["overrides"]["weights.bits"] - p["overrides"]["weights.frac"] == 9 - 14
        for s in p["per_seed"]:
            assert math.isfinite(s["rate_rmse_hz"]) and s["w_rmse_vs_float"] > 0
    assert set(rep["recommended"]) == {"weight_bits"}
    assert rep["provenance"]["executor"] == "serial"


def test_grid_plot_marks_each_cell_with_its_verdict(tmp_path, monkeypatch):
    """The heat map's cells say tracks / does not / not resolved (the old
    title promised white contours the colour map never showed) and the ticks are the widths."""
    import matplotlib.axes
    from natgrad.sweep import write_plots
    table = {(8, 6): 9.0, (8, 10): 0.45, (12, 6): 3.0, (12, 10): 0.0}
    s = _summary(table, range(4), spread=0.2)
    texts, ticks = [], []
    real_text, real_xticks = matplotlib.axes.Axes.text, matplotlib.axes.Axes.set_xticks
    monkeypatch.setattr(matplotlib.axes.Axes, "text",
                        lambda self, x, y, t, *a, **k: texts.append((x, y, t)) or real_text(self, x, y, t, *a, **k))
    monkeypatch.setattr(matplotlib.axes.Axes, "set_xticks",
                        lambda self, t, *a, **k: ticks.append(list(t)) or real_xticks(self, t, *a, **k))
    varies = [("weight_bits", [8, 12]), ("trace_bits", [6, 10])]
    names = write_plots(s, varies, 0.5, "fxp16", tmp_path)
    assert "sweep_grid.png" in names and (tmp_path / "sweep_grid.png").stat().st_size > 5000
    assert sorted(t for _, _, t in texts) == ["?", "ok", "x", "x"]
    assert (8, 10, "?") in texts and (12, 10, "ok") in texts
    assert [8, 12] in ticks


def test_eta_reaches_the_runs():
    """--eta is the approximate rule's rate in code units, also in a sweep
    point (default the paper's 5.5e-4): a faster rate learns more in the same steps."""
    from natgrad.sweep import run_point
    base = load("fxp16")
    slow = run_point(base.tree, str(base.source), {}, 0, 2000, 1)
    same = run_point(base.tree, str(base.source), {}, 0, 2000, 1, 5.5e-4)
    fast = run_point(base.tree, str(base.source), {}, 0, 2000, 1, 2.2e-2)
    assert slow["rate_rmse_hz"] == same["rate_rmse_hz"]
    assert fast["rate_rmse_hz"][0] != slow["rate_rmse_hz"][0]
