"""Time the core fixedpoint ops on 10**6 elements against the raw numpy expression.

Run:  uv run python benchmarks/bench_fixedpoint.py [--n N] [--repeat R]

For each op the "raw" column is the plain numpy expression producing the same result
(including the out-of-range count where the helper returns one, since counting is part of
what the helper delivers).  The helper should cost at most 1.5x the raw expression.
Times are the best of R runs, in milliseconds.  This is a script, not a test: nothing here
asserts wall time.
"""
from __future__ import annotations

import argparse
import timeit

import numpy as np

import fixedpoint as fp


def best_ms_pair(helper, raw, repeat):
    """Best-of-``repeat`` times (ms) of two callables, interleaved so load spikes on a
    shared machine hit both alike."""
    helper(), raw()  # warm-up
    th, tr = [], []
    for _ in range(repeat):
        th.append(timeit.timeit(helper, number=1))
        tr.append(timeit.timeit(raw, number=1))
    return min(th) * 1e3, min(tr) * 1e3


def cases(n):
    g = np.random.default_rng(0)
    x = g.integers(-(2**40), 2**40, n)                 # wide values for shifts
    s = 7
    h = 1 << (s - 1)
    m = (1 << s) - 1
    r = fp.rng.random_bits(1, fp.rng.STREAM_ROUND, 0, np.arange(n))
    f16 = fp.QFormat(16, 8)
    lo, hi = f16.min_int, f16.max_int
    xin = g.integers(lo, hi + 1, n)                     # all in range: common case
    xout = xin.copy()
    xout[:: 100] *= 300                                 # 1 % out of range
    xf = g.normal(0.0, 40.0, n)
    half = 1 << (f16.bits - 1)
    mask = (1 << f16.bits) - 1
    v24 = g.integers(-(2**23), 2**23, n)
    f24 = fp.QFormat(24, 0)
    d = 410
    fac, F = fp.decay_factor(20.0, 1.0, 16), 16
    w_fmt, x_fmt, acc_fmt = fp.QFormat(16, 12), fp.QFormat(12, 8), fp.QFormat(24, 14)
    a = g.integers(w_fmt.min_int, w_fmt.max_int + 1, n)
    b = g.integers(x_fmt.min_int, x_fmt.max_int + 1, n)
    acc = g.integers(-(2**20), 2**20, n)
    alo, ahi = acc_fmt.min_int, acc_fmt.max_int
    lut = fp.LUT.build(np.tanh, fp.QFormat(16, 12), 8, fp.QFormat(16, 14))
    t, ls, llo, lhi = lut.table, lut.shift, lut.lo, lut.hi

    def raw_sat(x):
        y = np.clip(x, lo, hi)
        return y, int(np.count_nonzero(y != x))

    def raw_wrap(x):
        y = ((x + half) & mask) - half
        return y, int(np.count_nonzero(y != x))

    def raw_quant():
        v = np.rint(xf * 2.0**8)
        n_out = int(np.count_nonzero(v > hi)) + int(np.count_nonzero(v < lo))
        return np.clip(v, lo, hi).astype(np.int64), n_out

    def raw_mac():
        y = np.clip(acc + ((a * b + h) >> s), alo, ahi)
        return y

    def raw_interp():
        off = np.clip(xin, llo, lhi) - llo
        i = off >> ls
        t0 = t[i]
        return t0 + (((t[i + 1] - t0) * (off & ((1 << ls) - 1)) + (1 << (ls - 1))) >> ls)

    lava = lambda p: np.sign(p) * np.right_shift(np.abs(p), 12)  # noqa: E731

    return [
        ("shift_right floor", lambda: fp.shift_right(x, s, "floor"), lambda: x >> s),
        ("shift_right trunc", lambda: fp.shift_right(x, s, "trunc"),
         lambda: np.sign(x) * (np.abs(x) >> s)),
        ("shift_right half_up", lambda: fp.shift_right(x, s, "half_up"), lambda: (x + h) >> s),
        ("shift_right half_even", lambda: fp.shift_right(x, s, "half_even"),
         lambda: (x + (h - 1) + ((x >> s) & 1)) >> s),
        ("shift_right half_away", lambda: fp.shift_right(x, s, "half_away"),
         lambda: np.sign(x) * ((np.abs(x) + h) >> s)),
        ("shift_right stochastic", lambda: fp.shift_right(x, s, "stochastic", rand=r),
         lambda: (x + (r & np.uint64(m)).view(np.int64)) >> s),
        ("requantize 20->13 half_up", lambda: fp.requantize(x, 20, 13, "half_up"),
         lambda: (x + h) >> s),
        ("saturate (in range)", lambda: fp.saturate(xin, f16), lambda: raw_sat(xin)),
        ("saturate (1% out)", lambda: fp.saturate(xout, f16), lambda: raw_sat(xout)),
        ("wrap (in range)", lambda: fp.wrap(xin, f16), lambda: raw_wrap(xin)),
        ("wrap (1% out)", lambda: fp.wrap(xout, f16), lambda: raw_wrap(xout)),
        ("quantize half_even sat", lambda: f16.quantize(xf, "half_even", return_count=True),
         raw_quant),
        ("to_float", lambda: f16.to_float(xin), lambda: xin * 2.0**-8),
        ("decay (Lava, trunc)", lambda: fp.decay(v24, d), lambda: lava(v24 * (4096 - d))),
        ("decay (Lava) x_fmt=s24", lambda: fp.decay(v24, d, x_fmt=f24),
         lambda: lava(v24 * (4096 - d))),
        ("decay_mul half_up", lambda: fp.decay_mul(v24, fac, F, "half_up"),
         lambda: (v24 * fac + (1 << (F - 1))) >> F),
        ("decay_mul half_up x_fmt=s24",
         lambda: fp.decay_mul(v24, fac, F, "half_up", x_fmt=f24),
         lambda: (v24 * fac + (1 << (F - 1))) >> F),
        ("lut lookup", lambda: lut.lookup(xin),
         lambda: t[(np.clip(xin, llo, lhi) - llo + (1 << (ls - 1))) >> ls]),
        ("lut lookup interp", lambda: lut.lookup(xin, interp=True), raw_interp),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10**6)
    ap.add_argument("--repeat", type=int, default=25)
    args = ap.parse_args()
    rows = []
    for name, helper, raw in cases(args.n):
        th, tr = best_ms_pair(helper, raw, args.repeat)
        rows.append((name, th, tr, th / tr))
    w = max(len(r[0]) for r in rows)
    print(f"n = {args.n:,} int64/float64 elements, best of {args.repeat}")
    print(f"{'op':<{w}}  {'helper ms':>9}  {'raw ms':>7}  {'ratio':>5}")
    print("-" * (w + 28))
    for name, th, tr, ratio in rows:
        flag = "" if ratio <= 1.5 else "  > 1.5x"
        print(f"{name:<{w}}  {th:9.2f}  {tr:7.2f}  {ratio:5.2f}{flag}")


if __name__ == "__main__":
    main()
