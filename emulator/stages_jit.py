"""numba twins of :mod:`emulator.stages`: the same arithmetic for one trial's row.

Each ``*_row`` / ``*_one`` function mirrors the numpy stage of the same name, bit for bit
(``tests/emulator/test_stages.py``), and is compiled with ``inline='always'`` so that the fused
kernel (:mod:`emulator.kernels`) is one loop nest without call overhead.  Scalars come from
the constant record ``c`` built by :func:`pack` from :meth:`Discretized.scalars` (field names
``<short>_bits``, ``<short>_frac``, ``<short>_rounding`` of :mod:`emulator.variables`, and the
constants of the record).  Rounding uses :mod:`fixedpoint.jit`; random words come from
per-step stream prefixes (``fixedpoint.jit.stream_prefix``), indexed as in numpy.

Every function returns the number of events it counted, so that the caller adds them to
the counter of the variable (:data:`emulator.variables.COUNTERS`).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from emulator.discretize import (INTERP_FRAC, M_LO, M_SPAN, POST_A_FRAC, POST_B_FRAC, RATE_FRAC,
                                 STAT_V_FRAC, STAT_W_FRAC, V_GUARD_BITS, V_SPAN, Discretized)
from fixedpoint.jit import (lut_lookup_below, lut_lookup_interp, random_bits_from_prefix,
                            shift_right_row)
from fixedpoint.jit import requantize as _requantize
from fixedpoint.jit import saturate as _saturate
from fixedpoint.rounding import ROUNDING_MODES

__all__ = ["pack", "traces_row", "usp_row", "potential_one", "gamma_one", "sigmoid_one",
           "error_one", "post_factor_one", "bracket_homo_row", "bracket_cwv_one", "bracket_row",
           "update_row", "output_spike_one"]

_STOCH = ROUNDING_MODES.index("stochastic")
_HALF_UP = ROUNDING_MODES.index("half_up")
_FLOOR = ROUNDING_MODES.index("floor")
_M_SPAN_LOG2 = int(np.log2(M_SPAN))
_V_SPAN_LOG2 = int(np.log2(V_SPAN))
_M_FRAC = STAT_W_FRAC + RATE_FRAC
_M_LO_INT = int(M_LO) << _M_FRAC


def pack(d: Discretized):
    """All scalar integers of ``d`` as one numpy record (a numba ``Record`` argument)."""
    scalars = d.scalars()
    rec = np.zeros(1, np.dtype([(k, np.int64) for k in scalars]))
    for k, v in scalars.items():
        rec[0][k] = v
    return rec[0]


@njit(cache=True, inline="always")
def _shift(x, s, mode, r):
    """``x * 2**-s`` rounded; ``s <= 0`` an exact left shift (``stages.shift``)."""
    return _requantize(x, s, 0, mode, r)


@njit(cache=True, inline="always")
def _clip_count(x, lo, hi):
    """(clipped value, 1 if it was clipped else 0)."""
    y = _saturate(x, lo, hi)
    return y, np.int64(y != x)


@njit(cache=True, inline="always")
def _word(mode, prefix, index):
    """The random word of a rounding site, drawn only when the mode is stochastic."""
    if mode == _STOCH:
        return random_bits_from_prefix(prefix, index)
    return np.uint64(0)


# --------------------------------------------------------------------------- 1. traces
@njit(cache=True, inline="always")
def traces_row(a_row, tmp, decay, spk_row, c, prefix, base, stride):
    """In place ``a_row`` (N,) <- traces stage; random index ``base + stride * i``."""
    n = a_row.shape[0]
    for i in range(n):
        tmp[i] = a_row[i] * decay
    shift_right_row(tmp, tmp, c.decay_frac, c.trace_rounding, prefix, base, stride)
    tmax = c.trace_max
    impulse = c.impulse
    n_sat = 0
    for i in range(n):
        a = tmp[i] + np.int64(spk_row[i]) * impulse
        if a < 0:
            a = np.int64(0)
            n_sat += 1
        elif a > tmax:
            a = tmax
            n_sat += 1
        a_row[i] = a
    return n_sat


# --------------------------------------------------------------------------- 2. USP
@njit(cache=True, inline="always")
def usp_row(x_row, a_m_row, a_s_row, tmp, c, prefix, base):
    """x_row (N,) <- USP stage of the traces (index ``base + i``)."""
    n = x_row.shape[0]
    mant = c.usp_mant
    for i in range(n):
        tmp[i] = (a_m_row[i] - a_s_row[i]) * mant
    shift_right_row(tmp, tmp, c.trace_frac + c.usp_shift - c.usp_frac, c.usp_rounding, prefix,
                    base, 1)
    top = np.int64(1) << (c.usp_bits - 1)
    n_sat = 0
    for i in range(n):
        xi = tmp[i]
        if xi < -top:
            xi = -top
            n_sat += 1
        elif xi > top - 1:
            xi = top - 1
            n_sat += 1
        x_row[i] = xi
    return n_sat


# --------------------------------------------------------------------------- 3.-4. V
@njit(cache=True, inline="always")
def potential_one(w_row, x_row, c, prefix, index):
    """(V, saturated 0/1) of one neuron from its visible weights and the USPs."""
    psh = c.w_frac + c.usp_frac - c.v_frac - V_GUARD_BITS
    vacc = np.int64(0)
    n = w_row.shape[0]
    if psh > 0:                     # each product floored to the guard bits
        for i in range(n):
            vacc += (w_row[i] * x_row[i]) >> psh
    else:
        for i in range(n):
            vacc += (w_row[i] * x_row[i]) << (-psh)
    v = _shift(vacc, V_GUARD_BITS, c.v_rounding, _word(c.v_rounding, prefix, index))
    top = np.int64(1) << (c.v_bits - 1)
    return _clip_count(v, -top, top - 1)


# --------------------------------------------------------------------------- 5. gamma_s
@njit(cache=True, inline="always")
def _table_position(value, frac, lo, span_log2, lut_bits):
    pos = _shift(value - lo, frac + span_log2 - lut_bits - INTERP_FRAC, _FLOOR, np.uint64(0))
    top = ((np.int64(1) << lut_bits) - 1) << INTERP_FRAC
    clamped = pos < 0 or pos > top
    if pos < 0:
        pos = np.int64(0)
    elif pos > top:
        pos = top
    j = pos >> INTERP_FRAC
    if j > (np.int64(1) << lut_bits) - 2:
        j = (np.int64(1) << lut_bits) - 2
    return j, pos - (j << INTERP_FRAC), clamped


@njit(cache=True, inline="always")
def gamma_one(w_row, rates_q, gamma_lut, c):
    """(gamma_s, clamped 0/1) of one neuron from its visible weights (2-D table)."""
    macc = np.int64(0)
    vsq = np.int64(0)
    sh = c.w_frac - STAT_W_FRAC
    for i in range(w_row.shape[0]):
        ws = _shift(w_row[i], sh, _FLOOR, np.uint64(0))
        macc += ws * rates_q[i]
        vsq += ws * ws * rates_q[i]
    vsq = _shift(vsq, 2 * STAT_W_FRAC + RATE_FRAC - STAT_V_FRAC, _FLOOR, np.uint64(0))
    vq = _shift(vsq * c.inv_ceps_mant, c.inv_ceps_shift, _FLOOR, np.uint64(0))
    jm, tm, cm = _table_position(macc, _M_FRAC, _M_LO_INT, _M_SPAN_LOG2, c.gamma_m_bits)
    jv, tv, cv = _table_position(vq, STAT_V_FRAC, 0, _V_SPAN_LOG2, c.gamma_v_bits)
    one = np.int64(1) << INTERP_FRAC
    lo = gamma_lut[jm, jv] * (one - tv) + gamma_lut[jm, jv + 1] * tv
    hi = gamma_lut[jm + 1, jv] * (one - tv) + gamma_lut[jm + 1, jv + 1] * tv
    g = _shift(lo * (one - tm) + hi * tm, 2 * INTERP_FRAC, _HALF_UP, np.uint64(0))
    return g, np.int64(cm or cv)


# --------------------------------------------------------------------------- 6.-7.
@njit(cache=True, inline="always")
def sigmoid_one(v, sigma_lut, c):
    """sigma(V) from the table: ``LUT.lookup(v, interp, below=True)`` of ``stages.sigmoid``."""
    step_bits = c.v_bits - c.sigma_lut_bits
    top = np.int64(1) << (c.v_bits - 1)
    if c.sigma_interp != 0:
        return lut_lookup_interp(v, sigma_lut, -top, top - 1, step_bits, _HALF_UP)
    return lut_lookup_below(v, sigma_lut, -top, top - 1, step_bits)


@njit(cache=True, inline="always")
def error_one(sigma, y, c):
    """e = y - phi_max dt sigma in S.F_e."""
    return (np.int64(y) << c.err_frac) - _shift(sigma * c.phidt_mant,
                                                c.sigma_frac + c.phidt_shift - c.err_frac,
                                                _HALF_UP, np.uint64(0))


# --------------------------------------------------------------------------- 8. post
@njit(cache=True, inline="always")
def post_factor_one(gamma, sigma, err, c, prefix, index):
    """(P, number of saturation events) of one neuron."""
    lim_a = np.int64(1) << (61 - c.err_frac)
    mb = c.mant_bits if c.mant_bits > 1 else np.int64(1)
    lim_b = np.int64(1) << (62 - mb - 1)
    pa = _shift(gamma * ((np.int64(1) << c.sigma_frac) - sigma),
                c.gamma_frac + c.sigma_frac - POST_A_FRAC, _HALF_UP, np.uint64(0))
    pa, n1 = _clip_count(pa, -lim_a, lim_a)
    pb = _shift(pa * err, POST_A_FRAC + c.err_frac - POST_B_FRAC, _HALF_UP, np.uint64(0))
    pb, n2 = _clip_count(pb, -lim_b, lim_b)
    p = _shift(pb * c.eta_mant, POST_B_FRAC + c.eta_shift - c.post_frac, c.post_rounding,
               _word(c.post_rounding, prefix, index))
    top = np.int64(1) << (c.post_bits - 1)
    p, n3 = _clip_count(p, -top, top - 1)
    return p, n1 + n2 + n3


# --------------------------------------------------------------------------- 9. bracket
@njit(cache=True, inline="always")
def bracket_homo_row(homo, x_row, homo_mant, tmp, c, prefix, base):
    """homo (N,) <- c_eps x_i / r_i on the bracket grid (shared by the M neurons)."""
    for i in range(x_row.shape[0]):
        tmp[i] = x_row[i] * homo_mant[i]
    shift_right_row(homo, tmp, c.usp_frac + c.homo_shift - c.bracket_frac, c.bracket_rounding,
                    prefix, base, 1)


@njit(cache=True, inline="always")
def bracket_cwv_one(v, c, prefix, index):
    """(c_w V on the bracket grid, saturated 0/1) of one neuron."""
    cwv = _shift(v * c.cw_mant, c.v_frac + c.cw_shift - c.bracket_frac, c.bracket_rounding,
                 _word(c.bracket_rounding, prefix, index))
    top = np.int64(1) << (c.bracket_bits - 1)
    return _clip_count(cwv, -top, top - 1)


@njit(cache=True, inline="always")
def bracket_row(out, homo, cwv, w_row, c, prefix, base):
    """out (N,) <- B_i = homo_i - c_eps c_u + c_w V w_i; returns the number saturated."""
    n = w_row.shape[0]
    for i in range(n):
        out[i] = cwv * w_row[i]
    shift_right_row(out, out, c.w_frac, c.bracket_rounding, prefix, base, 1)
    top = np.int64(1) << (c.bracket_bits - 1)
    cu = c.cu_q
    n_sat = 0
    for i in range(n):
        b = homo[i] - cu + out[i]
        if b < -top:
            b = -top
            n_sat += 1
        elif b > top - 1:
            b = top - 1
            n_sat += 1
        out[i] = b
    return n_sat


# --------------------------------------------------------------------------- 10. update
@njit(cache=True, inline="always")
def update_row(acc_row, post, bracket, pbr, dw, c, prefix, base):
    """acc_row (N,) += round(P B_i); returns (underflows, saturations).  ``pbr``, ``dw``
    are (N,) scratch rows."""
    n = acc_row.shape[0]
    for i in range(n):
        pbr[i] = post * bracket[i]
    shift_right_row(dw, pbr, c.post_frac + c.bracket_frac - c.w_frac - c.w_extra, c.w_rounding,
                    prefix, base, 1)
    top = np.int64(1) << (c.w_bits + c.w_extra - 1)
    n_under = 0
    n_sat = 0
    for i in range(n):
        d = dw[i]
        if d == 0 and pbr[i] != 0:
            n_under += 1
        a = acc_row[i] + d
        if a < -top:
            a = -top
            n_sat += 1
        elif a > top - 1:
            a = top - 1
            n_sat += 1
        acc_row[i] = a
    return n_under, n_sat


# --------------------------------------------------------------------------- 11. output
@njit(cache=True, inline="always")
def output_spike_one(sigma, c, prefix, index):
    """Student spike 0/1 = Bernoulli(phi_max dt sigma), compared on 53 bits."""
    thr = _shift(sigma * c.phidt_mant, c.sigma_frac + c.phidt_shift - 53, _FLOOR, np.uint64(0))
    bits = random_bits_from_prefix(prefix, index) >> np.uint64(11)
    return np.int64(1) if bits < np.uint64(thr) else np.int64(0)
