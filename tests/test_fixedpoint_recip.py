"""Division-free floor(2**K / den) (issue 23 item 2): the reciprocal table, two Newton steps
and the bounded exact correction equal integer division on every input tried, the numba twin
equals the numpy version, and one correction step fewer than MAX_CORRECTIONS is not enough
(so the bound is tight, and a broken Newton step cannot hide behind the correction)."""
import numpy as np
import pytest

from fixedpoint import recip
from fixedpoint.jit import floor_pow2_div_jit
from fixedpoint.recip import MAX_CORRECTIONS, floor_pow2_div, recip_table


def _exact(k, den, qbits):
    top = (1 << qbits) - 1
    q = np.array([(1 << k) // int(d) if d > 0 else top + 1 for d in den], dtype=object)
    sat = np.array([v > top for v in q])
    return np.array([min(int(v), top) for v in q], np.int64), sat


def _inputs(seed=1):
    rng = np.random.default_rng(seed)
    p = np.arange(1, 46)
    return np.unique(np.concatenate([
        (2.0 ** rng.uniform(0, 45, 100_000)).astype(np.int64), np.arange(1, 3000),
        np.int64(1) << p, (np.int64(1) << p) - 1, (np.int64(1) << p) + 1, [0, -1, -(2 ** 40)]]))


@pytest.mark.parametrize("k,qbits", [(56, 24), (40, 24), (48, 16), (30, 30), (61, 24)])
def test_equals_integer_division(k, qbits):
    den = _inputs()
    den = den[den < (1 << 61)]
    q, sat = floor_pow2_div(k, den, qbits)
    ex, exsat = _exact(k, den, qbits)
    np.testing.assert_array_equal(q, ex)
    np.testing.assert_array_equal(sat, exsat)


def test_exhaustive_small_denominators():
    den = np.arange(-3, 1 << 20, dtype=np.int64)
    q, sat = floor_pow2_div(44, den, 24)
    ex = np.where(den > 0, (np.int64(1) << 44) // np.maximum(den, 1), 1 << 24)
    np.testing.assert_array_equal(q, np.minimum(ex, (1 << 24) - 1))
    np.testing.assert_array_equal(sat, ex > (1 << 24) - 1)


def test_numba_twin_is_bit_identical():
    den = _inputs(seed=2)[::7]
    table = recip_table()
    for k, qbits in ((56, 24), (40, 24)):
        q, sat = floor_pow2_div(k, den, qbits)
        got = [floor_pow2_div_jit(k, int(d), qbits, table) for d in den]
        np.testing.assert_array_equal(np.array([g[0] for g in got]), q)
        np.testing.assert_array_equal(np.array([g[1] for g in got]), sat)


def test_the_correction_bound_is_needed_and_enough(monkeypatch):
    den = _inputs(seed=3)
    ex, _ = _exact(56, den, 24)
    monkeypatch.setattr(recip, "MAX_CORRECTIONS", MAX_CORRECTIONS - 1)
    q, _ = floor_pow2_div(56, den, 24)
    assert np.any(q != ex)                       # one step fewer: some quotients are off
    monkeypatch.setattr(recip, "MAX_CORRECTIONS", MAX_CORRECTIONS)
    np.testing.assert_array_equal(floor_pow2_div(56, den, 24)[0], ex)
