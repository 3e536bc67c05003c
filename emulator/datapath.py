"""Simulate: the integer datapath of the approximate natural-gradient rule (numpy backend).

One call of :func:`step` advances every trial of a batch by one time step of 0.5 ms, in the
order of SPEC §2.5.  The same arithmetic, element by element, is compiled by numba in
:mod:`emulator.kernels`; the two are bit-identical (``tests/test_emulator_backends.py``).
``docs/datapath.md`` lists every format, rounding and saturation; in short (``F_x`` is the
fractional-bit count of variable x from the config, ``rs(v, s, mode)`` is
``fixedpoint.shift_right``: v * 2**-s rounded by ``mode``):

1. traces   a <- rs(a * decay, F_decay, traces.rounding) + X * 2**F_a ; saturate to U(bits)
2. USP      x = rs((a_m - a_s) * usp_mant, F_a + usp_shift - F_x, usp.rounding) ; sat S(bits)
3. weights  w = acc >> extra_frac (visible weight, floor)
4. V        V = rs(sum_i floor(w_i x_i * 2**-(F_w+F_x-F_V-G)), G, potential.rounding) ; sat
5. gamma_s  every ``epoch_steps``: m = sum w r, v = sum w^2 r / c_eps from the visible
            weights in integers, then a bilinear 2-D table over (m, v)
6. sigma    LUT over V's range (optionally interpolated); 1 - sigma = 2**F_s - sigma
7. error    e = y * 2**F_e - rs(sigma * phidt_mant, F_s + phidt_shift - F_e, half_up)
8. post     P = eta * gamma_s * (1 - sigma) * e   (two half-up intermediates, last rounding
            post.rounding) ; saturate S(post.bits)
9. bracket  B_i = rs(x_i * homo_mant_i, ...) - c_eps c_u + rs(rs(V c_w) * w_i, ...) ; sat
10. update  dw = rs(P * B, F_P + F_B - F_w - extra, weights.rounding); acc += dw ; sat.
            A nonzero P*B that rounds to dw = 0 counts as an underflow of ``weights``.
11. output  student spike = Bernoulli(phi_max dt sigma) from the counter RNG.

Randomness for stochastic rounding comes from :mod:`fixedpoint.rng`, one stream per
rounding site, indexed by ``(global step, trial << 32 | unit)``: results do not depend on
the batch split or on time chunking.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from emulator.discretize import (INTERP_FRAC, POST_A_FRAC, POST_B_FRAC, RATE_FRAC, STAT_V_FRAC,
                                 STAT_W_FRAC, V_GUARD_BITS, V_SPAN, M_LO, M_SPAN, Discretized)
from fixedpoint import rng
from fixedpoint.rounding import shift_right as _shift_right


def shift_right(x, s, mode, rand=None):
    """``x * 2**-s`` rounded by ``mode``; ``s <= 0`` is an exact left shift."""
    if s <= 0:
        return np.asarray(x, np.int64) << -s
    return _shift_right(x, s, mode, rand=rand)

# Rounding-site streams of the counter RNG (weights and traces use the library's named ones).
STREAM_SITE = {
    "trace_m": rng.STREAM_TRACE, "trace_s": rng.STREAM_TRACE, "usp": 16, "potential": 17,
    "homo": 18, "cw_v": 19, "hetero": 20, "post": 21, "weights": rng.STREAM_ROUND,
}

#: (variable, kind) pairs counted by the datapath, in this order in ``State.counts``.
COUNTERS = (
    ("traces", "saturation"), ("usp", "saturation"), ("potential", "saturation"),
    ("gamma_s", "saturation"), ("post", "saturation"), ("bracket", "saturation"),
    ("weights", "saturation"), ("weights", "underflow"),
)
C_TRACE, C_USP, C_V, C_GAMMA, C_POST, C_BRACKET, C_WSAT, C_WUNDER = range(len(COUNTERS))


@dataclasses.dataclass
class State:
    """Integer state of a batch of B trials, M output neurons, N afferents.

    All arrays are int64.  ``acc`` holds the weights with ``extra_frac`` hidden bits;
    the other per-step values are those of the last completed step (for recording and for
    the Lava Vars).
    """

    trials: np.ndarray   #: (B,) global trial ids
    a_m: np.ndarray      #: (B, N) slow trace, U.F_a
    a_s: np.ndarray      #: (B, N) fast trace, U.F_a
    acc: np.ndarray      #: (B, M, N) weight accumulator, S.(F_w + extra)
    gamma: np.ndarray    #: (B, M) gamma_s, U.F_gamma
    x: np.ndarray        #: (B, N) USP, S.F_x
    v: np.ndarray        #: (B, M) membrane potential, S.F_V
    sigma: np.ndarray    #: (B, M) sigma(V), U0.F_s
    err: np.ndarray      #: (B, M) teacher error, S.F_e
    post: np.ndarray     #: (B, M) post factor, S.F_P
    spikes: np.ndarray   #: (B, M) student output spikes (0/1)
    counts: np.ndarray   #: (len(COUNTERS),) events so far
    first: np.ndarray    #: (len(COUNTERS),) first global step of each event, -1 if none
    step: int = 0        #: next global step

    def copy(self) -> "State":
        return dataclasses.replace(self, **{f.name: np.copy(getattr(self, f.name))
                                            for f in dataclasses.fields(self)
                                            if isinstance(getattr(self, f.name), np.ndarray)})


def init_state(d: Discretized, w_init: np.ndarray, trials: np.ndarray | None = None) -> State:
    """Fresh state: traces zero, weights quantized from ``w_init`` (B, M, N) floats."""
    w_init = np.asarray(w_init, dtype=np.float64)
    b, m, n = w_init.shape
    trials = np.arange(b, dtype=np.int64) if trials is None else np.asarray(trials, np.int64)
    z = lambda *s: np.zeros(s, np.int64)  # noqa: E731
    state = State(trials=trials, a_m=z(b, n), a_s=z(b, n), acc=z(b, m, n),
                  gamma=z(b, m), x=z(b, n), v=z(b, m), sigma=z(b, m), err=z(b, m), post=z(b, m),
                  spikes=z(b, m), counts=z(len(COUNTERS)), first=np.full(len(COUNTERS), -1, np.int64))
    # initial weights outside the format are saturated, and counted at step 0
    q = np.rint(w_init * 2.0 ** (d.w_frac + d.w_extra))
    top = 2 ** (d.w_bits + d.w_extra - 1)
    state.acc = _sat(state, C_WSAT, q, -top, top - 1, 0).astype(np.int64)
    return state


class Indices:
    """Counter-RNG index arrays of a batch (trial << 32 | unit)."""

    def __init__(self, trials, m, n):
        t = np.asarray(trials, np.int64)[:, None] << 32
        self.aff = t + np.arange(n, dtype=np.int64)                           # (B, N)
        self.trace_m = t + 2 * np.arange(n, dtype=np.int64)
        self.trace_s = self.trace_m + 1
        self.neuron = t + np.arange(m, dtype=np.int64)                        # (B, M)
        self.syn = (t[:, :, None] + np.arange(m * n, dtype=np.int64).reshape(1, m, n))  # (B,M,N)


def _count(state: State, which: int, mask: np.ndarray, step: int) -> None:
    c = int(np.count_nonzero(mask))
    if c:
        state.counts[which] += c
        if state.first[which] < 0:
            state.first[which] = step


def _sat(state, which, x, lo, hi, step):
    _count(state, which, (x < lo) | (x > hi), step)
    return np.clip(x, lo, hi)


def _round(x, s, mode, seed, site, step, index):
    """shift_right with the site's random words drawn only when rounding stochastically."""
    if mode == "stochastic" and s > 0:
        bits = rng.random_bits(seed, STREAM_SITE[site], step, index)
        return shift_right(x, s, mode, bits)
    return shift_right(x, s, mode)


def _table_position(value, frac, lo_int, span_log2, lut_bits):
    """Integer table position with INTERP_FRAC fractional bits, clamped to the nodes.

    ``value`` has ``frac`` fractional bits; the table has 2**lut_bits nodes spaced
    2**(span_log2 - lut_bits) apart starting at ``lo_int`` (an integer in the same units as
    ``value``).  Returns (node index j in [0, 2**lut_bits - 2], weight t in [0, 2**IF]) and a
    mask of clamped entries.
    """
    shift = frac + span_log2 - lut_bits - INTERP_FRAC
    pos = shift_right(value - lo_int, shift, "floor")
    top = (2**lut_bits - 1) << INTERP_FRAC
    clamped = (pos < 0) | (pos > top)
    pos = np.clip(pos, 0, top)
    j = np.minimum(pos >> INTERP_FRAC, 2**lut_bits - 2)
    return j, pos - (j << INTERP_FRAC), clamped


def gamma_from_weights(d: Discretized, w: np.ndarray, state: State | None = None, step: int = 0):
    """gamma_s (B, M) in U.F_gamma from visible weights w (B, M, N) via the 2-D table."""
    # m = sum_i w_i r_i with w at STAT_W_FRAC and r at RATE_FRAC fractional bits.
    ws = shift_right(w, d.w_frac - STAT_W_FRAC, "floor")
    m_acc = (ws * d.rates_q).sum(axis=-1)                          # frac STAT_W + RATE
    v_acc = ((ws * ws) * d.rates_q).sum(axis=-1)                   # frac 2 STAT_W + RATE
    v_acc = shift_right(v_acc, 2 * STAT_W_FRAC + RATE_FRAC - STAT_V_FRAC, "floor")
    v_q = shift_right(v_acc * d.inv_ceps_mant, d.inv_ceps_shift, "floor")   # mV^2, STAT_V_FRAC
    m_frac = STAT_W_FRAC + RATE_FRAC
    m_lo = int(M_LO) << m_frac
    jm, tm, cm = _table_position(m_acc, m_frac, m_lo, int(np.log2(M_SPAN)), d.gamma_m_bits)
    jv, tv, cv = _table_position(v_q, STAT_V_FRAC, 0, int(np.log2(V_SPAN)), d.gamma_v_bits)
    g = d.gamma_lut
    one = 1 << INTERP_FRAC
    lo = g[jm, jv] * (one - tv) + g[jm, jv + 1] * tv
    hi = g[jm + 1, jv] * (one - tv) + g[jm + 1, jv + 1] * tv
    gamma = shift_right(lo * (one - tm) + hi * tm, 2 * INTERP_FRAC, "half_up")
    if state is not None:
        _count(state, C_GAMMA, cm | cv, step)
    return gamma


def sigma_lookup(d: Discretized, v: np.ndarray) -> np.ndarray:
    """sigma(V) in U0.F_s from V in S.F_V (table over V's representable range)."""
    shift = d.v_bits - d.sigma_lut_bits               # >= 0, checked by the config loader
    pos = v + (1 << (d.v_bits - 1))                   # offset binary, 0 .. 2**v_bits - 1
    j = pos >> shift
    lut = d.sigma_lut
    if not d.sigma_interp or shift == 0:
        return lut[j]
    t = pos - (j << shift)
    return lut[j] + shift_right((lut[j + 1] - lut[j]) * t, shift, "half_up")


def step(d: Discretized, state: State, x_spk: np.ndarray, y_spk: np.ndarray, seed: int,
         idx: Indices | None = None) -> None:
    """Advance ``state`` in place by one step with input spikes (B, N) and teacher (B, M)."""
    k = state.step
    b, m, n = state.acc.shape
    if idx is None:
        idx = Indices(state.trials, m, n)
    x_spk = np.asarray(x_spk, np.int64)
    y_spk = np.asarray(y_spk, np.int64)

    # 1. presynaptic traces
    a_m = _round(state.a_m * d.decay_m, d.decay_frac, d.trace_rounding, seed, "trace_m", k,
                 idx.trace_m) + x_spk * d.impulse
    a_s = _round(state.a_s * d.decay_s, d.decay_frac, d.trace_rounding, seed, "trace_s", k,
                 idx.trace_s) + x_spk * d.impulse
    state.a_m = _sat(state, C_TRACE, a_m, 0, d.trace_max, k)
    state.a_s = _sat(state, C_TRACE, a_s, 0, d.trace_max, k)

    # 2. USP
    x = _round((state.a_m - state.a_s) * d.usp_mant, d.trace_frac + d.usp_shift - d.usp_frac,
               d.usp_rounding, seed, "usp", k, idx.aff)
    top = 2 ** (d.usp_bits - 1)
    x = _sat(state, C_USP, x, -top, top - 1, k)
    state.x = x

    # 3.-4. visible weights and membrane potential
    w = state.acc >> d.w_extra
    prod = shift_right(w * x[:, None, :], d.w_frac + d.usp_frac - d.v_frac - V_GUARD_BITS, "floor")
    v = _round(prod.sum(axis=-1), V_GUARD_BITS, d.v_rounding, seed, "potential", k, idx.neuron)
    top = 2 ** (d.v_bits - 1)
    v = _sat(state, C_V, v, -top, top - 1, k)
    state.v = v

    # 5. gamma_s from (m, v) of the current weights, every epoch
    if k % d.gamma_epoch == 0:
        state.gamma = gamma_from_weights(d, w, state, k)

    # 6.-7. sigma and teacher error
    sigma = sigma_lookup(d, v)
    err = (y_spk << d.err_frac) - shift_right(sigma * d.phidt_mant,
                                              d.sigma_frac + d.phidt_shift - d.err_frac, "half_up")
    state.sigma, state.err = sigma, err

    # 8. post factor P = eta gamma_s (1 - sigma) e
    lim_a = 2 ** (61 - d.err_frac)
    pa = shift_right(state.gamma * ((1 << d.sigma_frac) - sigma),
                     d.gamma_frac + d.sigma_frac - POST_A_FRAC, "half_up")
    pa = _sat(state, C_POST, pa, -lim_a, lim_a, k)
    pb = shift_right(pa * err, POST_A_FRAC + d.err_frac - POST_B_FRAC, "half_up")
    lim_b = 2 ** (62 - max(d.cfg["constants"]["mant_bits"], 1) - 1)
    pb = _sat(state, C_POST, pb, -lim_b, lim_b, k)
    post = _round(pb * d.eta_mant, POST_B_FRAC + d.eta_shift - d.post_frac, d.post_rounding,
                  seed, "post", k, idx.neuron)
    top = 2 ** (d.post_bits - 1)
    post = _sat(state, C_POST, post, -top, top - 1, k)
    state.post = post

    # 9. bracket B = c_eps x / r - c_eps c_u + c_w V w
    bf = d.bracket_frac
    top = 2 ** (d.bracket_bits - 1)
    homo = _round(x * d.homo_mant, d.usp_frac + d.homo_shift - bf, d.bracket_rounding,
                  seed, "homo", k, idx.aff)
    cwv = _round(v * d.cw_mant, d.v_frac + d.cw_shift - bf, d.bracket_rounding, seed, "cw_v",
                 k, idx.neuron)
    cwv = _sat(state, C_BRACKET, cwv, -top, top - 1, k)
    het = _round(cwv[:, :, None] * w, d.w_frac, d.bracket_rounding, seed, "hetero", k, idx.syn)
    bracket = _sat(state, C_BRACKET, homo[:, None, :] - d.cu_q + het, -top, top - 1, k)

    # 10. weight update
    pbr = post[:, :, None] * bracket
    dw = _round(pbr, d.post_frac + bf - d.w_frac - d.w_extra, d.w_rounding, seed, "weights", k,
                idx.syn)
    _count(state, C_WUNDER, (dw == 0) & (pbr != 0), k)
    top = 2 ** (d.w_bits + d.w_extra - 1)
    state.acc = _sat(state, C_WSAT, state.acc + dw, -top, top - 1, k)

    # 11. student output spike, P = phi_max dt sigma, compared on 53 bits
    thr = shift_right(sigma * d.phidt_mant, d.sigma_frac + d.phidt_shift - 53, "floor")
    bits = rng.random_bits(seed, rng.STREAM_STUDENT, k, idx.neuron) >> np.uint64(11)
    state.spikes = (bits < thr.astype(np.uint64)).astype(np.int64)
    state.step = k + 1


def run_chunk(d: Discretized, state: State, x_spk: np.ndarray, y_spk: np.ndarray, seed: int,
              record=None) -> None:
    """Advance over a chunk: x_spk (T, B, N), y_spk (T, B, M).  ``record(state)`` is called
    after every step when given."""
    b, m, n = state.acc.shape
    idx = Indices(state.trials, m, n)
    for t in range(x_spk.shape[0]):
        step(d, state, x_spk[t], y_spk[t], seed, idx)
        if record is not None:
            record(state)
