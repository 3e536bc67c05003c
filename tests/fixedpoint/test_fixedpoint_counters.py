"""Overflow, saturation and underflow counts are exact on constructed cases."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import fixedpoint as fp

S8 = fp.QFormat(8, 0)          # [-128, 127]
U8 = fp.QFormat(8, 0, False)   # [0, 255]


def test_saturate_counts_and_values():
    x = np.array([-1000, -129, -128, -1, 0, 127, 128, 1000, 5])
    y, n = fp.saturate(x, S8)
    np.testing.assert_array_equal(y, [-128, -128, -128, -1, 0, 127, 127, 127, 5])
    assert n == 4
    y, n = fp.saturate(x, U8)
    np.testing.assert_array_equal(y, [0, 0, 0, 0, 0, 127, 128, 255, 5])
    assert n == 5
    y, n = fp.saturate(np.array([2**63 - 1, -(2**63)]), fp.QFormat(64, 0))
    assert n == 0
    y, n = fp.saturate(np.array([2**63 - 1, -(2**63), 0]), fp.QFormat(63, 0, False))
    np.testing.assert_array_equal(y, [2**63 - 1, 0, 0])
    assert n == 1


def test_wrap_counts_and_values():
    x = np.array([128, 129, 255, 256, -129, -256, -257, 127, -128, 0])
    y, n = fp.wrap(x, S8)
    np.testing.assert_array_equal(y, [-128, -127, -1, 0, 127, 0, -1, 127, -128, 0])
    assert n == 7
    y, n = fp.wrap(x, U8)
    np.testing.assert_array_equal(y, [128, 129, 255, 0, 127, 0, 255, 127, 128, 0])
    assert n == 5  # 256, -129, -256, -257, -128
    y, n = fp.wrap(np.array([2**62, -(2**62) - 1]), fp.QFormat(63, 0))
    np.testing.assert_array_equal(y, [-(2**62), 2**62 - 1])
    assert n == 2
    # a value that wraps onto itself modulo 2**bits is still counted: 256 -> 0 counts once
    assert fp.wrap(np.array([256, 0]), U8)[1] == 1


def test_quantize_counts():
    fmt = fp.QFormat(8, 4)  # [-8, 7.9375], LSB 1/16
    x = np.array([7.9375, 7.96875, 8.0, -8.0, -8.03125, -8.04, 1e300, -np.inf,
                  0.03125, 0.02, -0.03125, 0.0, 1 / 16])
    c = fp.OverflowCounters()
    q, n = fmt.quantize(x, "half_even", "saturate", return_count=True, counters=c, name="v",
                        step=11)
    # 7.96875*16 = 127.5 -> 128 (even) -> out; -8.03125*16 = -128.5 -> -128 (even) -> in
    np.testing.assert_array_equal(q, [127, 127, 127, -128, -128, -128, 127, -128, 0, 0, 0, 0, 1])
    assert n == 5          # 7.96875, 8.0, -8.04, 1e300, -inf
    assert c.count("v", "saturation") == 5
    assert c.count("v", "underflow") == 3  # 0.03125 -> 0 (tie to even), 0.02, -0.03125
    assert c.first_step("v", "saturation") == 11
    q, n = fmt.quantize(np.array([8.0, 16.0, -8.0625, 0.5]), "floor", "wrap", return_count=True)
    np.testing.assert_array_equal(q, [-128, 0, 127, 8])
    assert n == 3


def test_underflow_definition():
    raw = np.array([0, 1, -1, 7, 8, -8, -9, 100])
    y = fp.shift_right(raw, 4, "half_even")          # 8/16 = 0.5 -> 0, -8/16 -> -0 -> 0
    np.testing.assert_array_equal(y, [0, 0, 0, 0, 0, 0, -1, 6])
    assert fp.count_underflow(raw, y) == 5            # every nonzero that became 0
    np.testing.assert_array_equal(fp.underflow_mask(raw, y),
                                  [False, True, True, True, True, True, False, False])


def test_convert_counts():
    c = fp.OverflowCounters()
    y, n = fp.convert(np.array([1000, -1000, 3, 8, -8, 0]), fp.QFormat(16, 4), fp.QFormat(6, 0),
                      "half_up", "saturate", counters=c, name="x", step=4)
    # 1000/16 = 62.5 -> 63 -> 31 (sat); -62.5 -> -62 -> -32 (sat); 3/16 -> 0 (under);
    # 8/16 = .5 -> 1; -8/16 -> 0 (under)
    np.testing.assert_array_equal(y, [31, -32, 0, 1, 0, 0])
    assert n == 2
    assert c.count("x", "saturation") == 2 and c.count("x", "underflow") == 2


def test_counter_object_add_merge_roundtrip():
    c = fp.OverflowCounters()
    c.add("u", "overflow", 0, step=1)       # registers, but no first step
    assert c.as_dict()["u"]["first_overflow"] is None
    c.add("u", "overflow", 3, step=5)
    c.add("u", "overflow", 2, step=9)
    c.add("u", "underflow", np.array([True, False, True]), step=4)
    c.add("v", "saturation", np.int64(7))   # no step: counted, first step unknown
    assert c.count("u", "overflow") == 5 and c.first_step("u", "overflow") == 5
    assert c.count("u", "underflow") == 2
    assert c.count("v", "saturation") == 7 and c.first_step("v", "saturation") is None
    assert c.count("nobody", "overflow") == 0
    d = fp.OverflowCounters()
    d.add("u", "overflow", 1, step=2)
    d.add("w", "underflow", 4, step=0)
    c.merge(d)
    assert c.count("u", "overflow") == 6 and c.first_step("u", "overflow") == 2
    assert c.names == ["u", "v", "w"]
    assert c.total("overflow") == 6 and c.total() == 6 + 2 + 7 + 4
    assert fp.OverflowCounters.from_dict(c.as_dict()) == c
    assert pickle.loads(pickle.dumps(c)) == c
    with pytest.raises(ValueError):
        c.add("u", "bogus", 1)
    with pytest.raises(ValueError):
        c.add("u", "overflow", -1)
    with pytest.raises(TypeError):
        c.add("u", "overflow", 1.0)
    c.reset()
    assert c.as_dict() == {}
