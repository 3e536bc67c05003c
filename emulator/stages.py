"""The integer datapath of the approximate rule as named stages (numpy, batched).

Each stage is one function of a :class:`emulator.discretize.Discretized` record ``d`` and
integer arrays; it returns its result and the events it counted, and changes nothing else.
:func:`emulator.datapath.step` calls them in order; :mod:`emulator.stages_jit` holds their
numba twins (one trial's row at a time), which the fused kernel inlines, and
``tests/emulator/test_stages.py`` checks each pair for equality on random states in every rounding
mode.  ``docs/datapath.md`` gives every format; ``F_x`` is variable x's fractional bits.

Randomness: a stochastic rounding site draws its words from the counter RNG,
``random_bits(seed, STREAM_SITE[site], step, index)``; a :class:`Draw` carries
``(seed, step)`` and only draws when the mode is stochastic and the shift positive.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from emulator.discretize import (INTERP_FRAC, M_LO, M_SPAN, POST_A_FRAC, POST_B_FRAC, RATE_FRAC,
                                 STAT_V_FRAC, STAT_W_FRAC, V_GUARD_BITS, V_SPAN, Discretized)
from emulator.variables import STREAM_SITE
from fixedpoint import rng
from fixedpoint.decay import decay_mul
from fixedpoint.qformat import QFormat, saturate
from fixedpoint.rounding import requantize

__all__ = ["Draw", "shift", "traces", "usp", "potential", "gamma", "sigmoid", "error",
           "post_factor", "bracket", "update", "output_spike", "table_position"]


@dataclasses.dataclass(frozen=True)
class Draw:
    """Counter-RNG words of one global step: ``words(site, index)`` (uint64)."""

    seed: int
    step: int

    def words(self, site: str, index):
        return rng.random_bits(self.seed, STREAM_SITE[site], self.step, index)


def shift(x, s: int, mode: str = "floor", draw: Draw | None = None, site: str = "",
          index=None) -> np.ndarray:
    """``x * 2**-s`` rounded by ``mode`` (:func:`fixedpoint.rounding.requantize`); ``s <= 0``
    is an exact left shift.  Stochastic rounding takes its words from ``draw`` at ``site``."""
    if s <= 0:
        return requantize(x, s, 0)
    rand = draw.words(site, index) if mode == "stochastic" else None
    return requantize(x, s, 0, mode, rand=rand)


def _sat(x, lo: int, hi: int):
    """Clip to [lo, hi] (symmetric intermediate bounds, not a format); returns (values,
    number of clipped entries)."""
    x = np.asarray(x, np.int64)
    return np.clip(x, lo, hi), int(np.count_nonzero((x < lo) | (x > hi)))


def _sat_fmt(x, fmt: QFormat):
    """Saturate to a format: :func:`fixedpoint.qformat.saturate` (values, number clipped)."""
    return saturate(x, fmt)


# --------------------------------------------------------------------------- 1. traces
def traces(d: Discretized, a, decay: int, x_spk, draw: Draw, index):
    """a <- round(a * decay * 2**-F_decay) + X * 2**F_a, saturated to U(traces.bits).

    ``a`` (B, N) in U.F_a; ``decay`` = ``d.decay_m`` or ``d.decay_s``; ``x_spk`` (B, N)
    0/1; ``index`` the counter-RNG index of the site (trace_m: 2i, trace_s: 2i + 1).
    Returns (a, number saturated).
    """
    rand = draw.words("trace", index) if d.trace_rounding == "stochastic" else None
    a = decay_mul(a, decay, d.decay_frac, d.trace_rounding, rand=rand,
                  x_fmt=d.variables["traces"].fmt) + np.asarray(x_spk, np.int64) * d.impulse
    return _sat_fmt(a, d.variables["traces"].fmt)


# --------------------------------------------------------------------------- 2. USP
def usp(d: Discretized, a_m, a_s, draw: Draw, index):
    """x = (a_m - a_s) / (tau_m - tau_s) in S(usp.bits).F_x (mV); returns (x, number saturated)."""
    x = shift((a_m - a_s) * d.usp_mant, d.trace_frac + d.usp_shift - d.usp_frac, d.usp_rounding,
              draw, "usp", index)
    return _sat_fmt(x, d.variables["usp"].fmt)


# --------------------------------------------------------------------------- 3.-4. V
def potential(d: Discretized, w, x, draw: Draw, index):
    """V = sum_i w_i x_i in S(potential.bits).F_V (mV).

    Each product is floored to ``V_GUARD_BITS`` below V's LSB, the sum is rounded by
    ``potential.rounding``.  ``w`` (B, M, N) visible weights, ``x`` (B, N).  Returns (V, number saturated).
    """
    prod = shift(w * x[:, None, :], d.w_frac + d.usp_frac - d.v_frac - V_GUARD_BITS)
    v = shift(prod.sum(axis=-1), V_GUARD_BITS, d.v_rounding, draw, "potential", index)
    return _sat_fmt(v, d.variables["potential"].fmt)


# --------------------------------------------------------------------------- 5. gamma_s
def table_position(value, frac: int, lo_int: int, span_log2: int, lut_bits: int):
    """Integer table position with INTERP_FRAC fractional bits, clamped to the nodes.

    ``value`` has ``frac`` fractional bits; the table has 2**lut_bits nodes spaced
    2**(span_log2 - lut_bits) apart starting at ``lo_int`` (same units as ``value``).
    Returns (node index j in [0, 2**lut_bits - 2], weight t in [0, 2**INTERP_FRAC], clamped mask).
    """
    pos = shift(value - lo_int, frac + span_log2 - lut_bits - INTERP_FRAC)
    top = (2**lut_bits - 1) << INTERP_FRAC
    clamped = (pos < 0) | (pos > top)
    pos = np.clip(pos, 0, top)
    j = np.minimum(pos >> INTERP_FRAC, 2**lut_bits - 2)
    return j, pos - (j << INTERP_FRAC), clamped


def gamma(d: Discretized, w):
    """gamma_s (B, M) in U.F_gamma from visible weights w (B, M, N) via the 2-D table.

    m = sum_i w_i r_i and v = sum_i w_i^2 r_i / c_eps are formed in integers (w at
    STAT_W_FRAC, r at RATE_FRAC fractional bits), then a bilinear lookup.  Returns
    (gamma, number of lookups clamped at the table edges).
    """
    ws = shift(w, d.w_frac - STAT_W_FRAC)
    m_acc = (ws * d.rates_q).sum(axis=-1)                          # frac STAT_W + RATE
    v_acc = ((ws * ws) * d.rates_q).sum(axis=-1)                   # frac 2 STAT_W + RATE
    v_acc = shift(v_acc, 2 * STAT_W_FRAC + RATE_FRAC - STAT_V_FRAC)
    v_q = shift(v_acc * d.inv_ceps_mant, d.inv_ceps_shift)         # mV^2, STAT_V_FRAC
    m_frac = STAT_W_FRAC + RATE_FRAC
    jm, tm, cm = table_position(m_acc, m_frac, int(M_LO) << m_frac, int(np.log2(M_SPAN)),
                                d.gamma_m_bits)
    jv, tv, cv = table_position(v_q, STAT_V_FRAC, 0, int(np.log2(V_SPAN)), d.gamma_v_bits)
    g = d.gamma_lut
    one = 1 << INTERP_FRAC
    lo = g[jm, jv] * (one - tv) + g[jm, jv + 1] * tv
    hi = g[jm + 1, jv] * (one - tv) + g[jm + 1, jv + 1] * tv
    return (shift(lo * (one - tm) + hi * tm, 2 * INTERP_FRAC, "half_up"),
            int(np.count_nonzero(cm | cv)))


# --------------------------------------------------------------------------- 6. sigma
def sigmoid(d: Discretized, v):
    """sigma(V) in U0.F_s from V in S.F_V: the :class:`fixedpoint.LUT` over V's range, entry
    of the node at or below V, or (``sigmoid.interpolate``) linear interpolation rounded
    half up."""
    return d.sigma_table.lookup(v, interp=d.sigma_interp, below=True)


# --------------------------------------------------------------------------- 7. error
def error(d: Discretized, sigma, y_spk):
    """e = y - phi_max dt sigma in S.F_e (teacher count minus expected student count)."""
    return (np.asarray(y_spk, np.int64) << d.err_frac) - shift(
        sigma * d.phidt_mant, d.sigma_frac + d.phidt_shift - d.err_frac, "half_up")


# --------------------------------------------------------------------------- 8. post factor
def post_factor(d: Discretized, gamma_s, sigma, err, draw: Draw, index):
    """P = eta gamma_s (1 - sigma) e in S(post.bits).F_P.

    Two half-up intermediates (POST_A_FRAC, POST_B_FRAC fractional bits), each clipped to
    what the next product can hold in int64, then eta and ``post.rounding``.  Returns
    (P, number of saturation events over the three clips).
    """
    lim_a = 2 ** (61 - d.err_frac)
    pa, sa = _sat(shift(gamma_s * ((1 << d.sigma_frac) - sigma),
                        d.gamma_frac + d.sigma_frac - POST_A_FRAC, "half_up"), -lim_a, lim_a)
    lim_b = 2 ** (62 - max(d.mant_bits, 1) - 1)
    pb, sb = _sat(shift(pa * err, POST_A_FRAC + d.err_frac - POST_B_FRAC, "half_up"),
                  -lim_b, lim_b)
    p = shift(pb * d.eta_mant, POST_B_FRAC + d.eta_shift - d.post_frac, d.post_rounding, draw,
              "post", index)
    p, sp = _sat_fmt(p, d.variables["post"].fmt)
    return p, sa + sb + sp


# --------------------------------------------------------------------------- 9. bracket
def bracket(d: Discretized, x, v, w, draw: Draw, index_aff, index_neuron, index_syn):
    """B_i = c_eps x_i / r_i - c_eps c_u + c_w V w_i in S(bracket.bits).F_B.

    ``x`` (B, N), ``v`` (B, M), ``w`` (B, M, N) visible weights.  Three rounding sites
    (homo, cw_v, hetero), each by ``bracket.rounding``.  Returns (B, number of
    saturation events: the c_w V clip and the bracket clip).
    """
    fmt = d.variables["bracket"].fmt
    bf = d.bracket_frac
    homo = shift(x * d.homo_mant, d.usp_frac + d.homo_shift - bf, d.bracket_rounding, draw,
                 "homo", index_aff)
    cwv, s_cwv = _sat_fmt(shift(v * d.cw_mant, d.v_frac + d.cw_shift - bf, d.bracket_rounding,
                                draw, "cw_v", index_neuron), fmt)
    het = shift(cwv[:, :, None] * w, d.w_frac, d.bracket_rounding, draw, "hetero", index_syn)
    b, s_b = _sat_fmt(homo[:, None, :] - d.cu_q + het, fmt)
    return b, s_cwv + s_b


# --------------------------------------------------------------------------- 10. update
def update(d: Discretized, acc, post, bracket_, draw: Draw, index):
    """acc <- acc + round(P B) onto the accumulator grid (F_w + extra_frac), saturated.

    Returns (acc, number of underflows (nonzero P B rounded to 0), number saturated).
    """
    pbr = post[:, :, None] * bracket_
    dw = shift(pbr, d.post_frac + d.bracket_frac - d.w_frac - d.w_extra, d.w_rounding, draw,
               "weights", index)
    acc, sat = _sat_fmt(acc + dw, d.variables["weights"].acc_fmt)
    return acc, int(np.count_nonzero((dw == 0) & (pbr != 0))), sat


# --------------------------------------------------------------------------- 11. output
def output_spike(d: Discretized, sigma, seed: int, step: int, index):
    """Student spike = Bernoulli(phi_max dt sigma), the probability compared on 53 bits."""
    thr = shift(sigma * d.phidt_mant, d.sigma_frac + d.phidt_shift - 53)
    bits = rng.random_bits(seed, rng.STREAM_STUDENT, step, index) >> np.uint64(11)
    return (bits < thr.astype(np.uint64)).astype(np.int64)
