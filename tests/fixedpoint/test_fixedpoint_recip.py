"""Division-free reciprocal in 24-bit words: the seed table and two Newton
steps stay within the stated bound (one unit of y's last place, REL_ERROR_BOUND relative) on
EVERY mantissa a 24-bit word can hold; the numba twin equals the numpy version; one Newton
step is not enough (so the bound is tight and a broken step cannot hide)."""
import numpy as np
import pytest

from fixedpoint import recip
from fixedpoint.jit import recip_word_jit
from fixedpoint.recip import REL_ERROR_BOUND, recip_table, recip_word

W = 24
F = W - 2


def _all_mantissas():
    return np.arange(1 << F, 1 << (F + 1), dtype=np.int64)      # e = F: xm = x


def test_within_one_ulp_on_every_mantissa():
    x = _all_mantissas()
    y, e = recip_word(x, W)
    assert np.all(e == F)
    exact = 2.0 ** (2 * F) / x                      # float64 holds these to 2**-52 relative
    err = y - exact
    assert np.abs(err).max() < 1.0, np.abs(err).max()
    rel = np.abs(y * 2.0 ** -(F + e) * x - 1)
    assert rel.max() <= REL_ERROR_BOUND
    # every word stays a signed 24-bit word: y <= 2**F, xm y / 2**F about 2**F
    assert y.max() <= 2 ** F and y.min() > 2 ** (F - 1) - 2


def test_small_inputs_and_exponent():
    x = np.concatenate([np.arange(1, 1 << 14), (np.int64(1) << np.arange(0, 23)),
                        (np.int64(1) << np.arange(1, 23)) - 1])
    y, e = recip_word(x, W)
    np.testing.assert_array_equal(e, np.floor(np.log2(x)).astype(np.int64))
    rel = np.abs(y * 2.0 ** -(F + e) * x - 1)
    assert rel.max() <= REL_ERROR_BOUND
    y0, e0 = recip_word(np.array([0, -5]), W)
    np.testing.assert_array_equal(y0, [0, 0])


def test_numba_twin_is_bit_identical():
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.integers(1, 1 << 23, 20_000), np.arange(-2, 3000)])
    table = recip_table(W)
    y, e = recip_word(x, W)
    got = np.array([recip_word_jit(np.int64(v), W, table) for v in x])
    np.testing.assert_array_equal(got[:, 0], y)
    np.testing.assert_array_equal(got[:, 1], e)


def test_one_newton_step_is_not_enough(monkeypatch):
    x = _all_mantissas()[::97]
    monkeypatch.setattr(recip, "NEWTON_STEPS", 1)
    y, e = recip_word(x, W)
    rel = np.abs(y * 2.0 ** -(F + e) * x - 1)
    assert rel.max() > 4 * REL_ERROR_BOUND      # measured: 8x


@pytest.mark.parametrize("word_bits", [24, 32])
def test_table_seeds_fit_the_word(word_bits):
    t = recip_table(word_bits)
    assert t.max() <= 2 ** (word_bits - 2) and t.min() >= 2 ** (word_bits - 3)
