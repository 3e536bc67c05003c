"""The comparison's late window (natgrad.comparison.window / window_mean / late_excess).

Every learning-curve experiment takes its late window from here: ``run``'s last quarter of
the points, the paper's fixed windows (Fig 3F: 200-300 s at the small scale, 1000-2000 s at
paper scale), and the benchmark's open window [late, end].
"""
import numpy as np

from natgrad import comparison


T_S = np.arange(0.0, 301.0, 20.0)          # 16 points: 0, 20, ..., 300 s (Fig 3F small)


def test_default_window_is_the_last_quarter_of_the_points():
    sel = comparison.window(T_S)
    # 16 points: the last quarter starts at point round(16 * 0.75) = 12, t = 240 s
    assert np.arange(T_S.size)[sel].tolist() == [12, 13, 14, 15]


def test_window_in_seconds_includes_both_ends():
    sel = comparison.window(T_S, (200.0, 300.0))
    assert T_S[sel].tolist() == [200.0, 220.0, 240.0, 260.0, 280.0, 300.0]
    assert T_S[comparison.window(T_S, (250.0, None))].tolist() == [260.0, 280.0, 300.0]


def test_window_mean_per_trial_and_an_empty_window():
    y = np.stack([T_S, 2 * T_S], axis=1)       # (points, trials)
    np.testing.assert_allclose(comparison.window_mean(y, T_S, (200.0, 300.0)), [250.0, 500.0])
    # a run that ends before the window: its last point, or None when asked
    assert comparison.window_mean(y, T_S, (1000.0, 2000.0)).tolist() == [300.0, 600.0]
    assert comparison.window_mean(y, T_S, (1000.0, 2000.0), empty=None) is None


def test_late_excess_uses_the_comparisons_window():
    fl = np.zeros((T_S.size, 2))
    ch = np.stack([T_S / 100.0, np.ones_like(T_S)], axis=1)
    c = comparison.Comparison(None, None, T_S, fl, ch)
    np.testing.assert_allclose(comparison.late_excess(c), [np.mean(T_S[12:]) / 100.0, 1.0])
    c.window_s = (200.0, 300.0)
    np.testing.assert_allclose(comparison.late_excess(c), [2.5, 1.0])
