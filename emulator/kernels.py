"""Fused numba backend of the integer datapath: the arithmetic of :mod:`emulator.datapath`,
element by element, in one compiled loop over (steps, trials, neurons, afferents).

It must stay bit-identical to the numpy step (``tests/test_emulator_backends.py`` checks
weights, V, traces, spikes and counters on several configs, seeds and shapes).  Rounding
and random words use the scalar twins of :mod:`fixedpoint.jit`.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from emulator.datapath import (C_BRACKET, C_GAMMA, C_POST, C_TRACE, C_USP, C_V, C_WSAT,
                               C_WUNDER, STREAM_SITE, State)
from emulator.discretize import (INTERP_FRAC, M_LO, M_SPAN, POST_A_FRAC, POST_B_FRAC, RATE_FRAC,
                                 STAT_V_FRAC, STAT_W_FRAC, V_GUARD_BITS, V_SPAN, Discretized)
from fixedpoint import rng
from fixedpoint.jit import random_bits_from_prefix, shift_right_row, stream_prefix
from fixedpoint.jit import shift_right as _srs
from fixedpoint.rounding import ROUNDING_MODES

MODE_CODES = {name: code for code, name in enumerate(ROUNDING_MODES)}

# Indices of the packed integer constants.
(K_DECAY_M, K_DECAY_S, K_DECAY_FRAC, K_IMPULSE, K_TRACE_MAX, K_TRACE_RND, K_USP_MANT, K_USP_SH,
 K_USP_RND, K_USP_BITS, K_WFRAC, K_WEXTRA, K_WBITS, K_WRND, K_VFRAC, K_VBITS, K_VRND,
 K_SFRAC, K_SLUT_BITS, K_SINTERP, K_EFRAC, K_PHIDT_MANT, K_PHIDT_SH, K_GFRAC, K_GEPOCH,
 K_GM_BITS, K_GV_BITS, K_BFRAC, K_BBITS, K_BRND, K_HOMO_SH, K_CU, K_CW_MANT, K_CW_SH,
 K_PFRAC, K_PBITS, K_PRND, K_ETA_MANT, K_ETA_SH, K_MANT_BITS, K_INVC_MANT, K_INVC_SH,
 K_TRACE_FRAC, K_USP_FRAC, N_CONST) = range(45)

_STOCH = MODE_CODES["stochastic"]


def pack_constants(d: Discretized) -> np.ndarray:
    """All scalar integers of ``d`` in one int64 vector (indices K_*)."""
    mc = MODE_CODES
    vals = {
        K_DECAY_M: d.decay_m, K_DECAY_S: d.decay_s, K_DECAY_FRAC: d.decay_frac,
        K_IMPULSE: d.impulse, K_TRACE_MAX: d.trace_max, K_TRACE_RND: mc[d.trace_rounding],
        K_USP_MANT: d.usp_mant, K_USP_SH: d.usp_shift, K_USP_RND: mc[d.usp_rounding],
        K_USP_BITS: d.usp_bits, K_WFRAC: d.w_frac, K_WEXTRA: d.w_extra, K_WBITS: d.w_bits,
        K_WRND: mc[d.w_rounding], K_VFRAC: d.v_frac, K_VBITS: d.v_bits, K_VRND: mc[d.v_rounding],
        K_SFRAC: d.sigma_frac, K_SLUT_BITS: d.sigma_lut_bits, K_SINTERP: int(d.sigma_interp),
        K_EFRAC: d.err_frac, K_PHIDT_MANT: d.phidt_mant, K_PHIDT_SH: d.phidt_shift,
        K_GFRAC: d.gamma_frac, K_GEPOCH: d.gamma_epoch, K_GM_BITS: d.gamma_m_bits,
        K_GV_BITS: d.gamma_v_bits, K_BFRAC: d.bracket_frac, K_BBITS: d.bracket_bits,
        K_BRND: mc[d.bracket_rounding], K_HOMO_SH: d.homo_shift, K_CU: d.cu_q,
        K_CW_MANT: d.cw_mant, K_CW_SH: d.cw_shift, K_PFRAC: d.post_frac, K_PBITS: d.post_bits,
        K_PRND: mc[d.post_rounding], K_ETA_MANT: d.eta_mant, K_ETA_SH: d.eta_shift,
        K_MANT_BITS: d.cfg["constants"]["mant_bits"], K_INVC_MANT: d.inv_ceps_mant,
        K_INVC_SH: d.inv_ceps_shift, K_TRACE_FRAC: d.trace_frac, K_USP_FRAC: d.usp_frac,
    }
    out = np.zeros(N_CONST, np.int64)
    for k, v in vals.items():
        out[k] = v
    return out


_HALF_UP = MODE_CODES["half_up"]
_FLOOR = MODE_CODES["floor"]


@njit(cache=True, inline="always")
def _rs(x, s, mode, r):
    """x * 2**-s rounded; s <= 0 is an exact left shift (as datapath.shift_right)."""
    if s <= 0:
        return x << (-s)
    return _srs(x, s, mode, r)


@njit(cache=True, inline="always")
def _clip(x, lo, hi, counts, first, which, k):
    if x < lo:
        counts[which] += 1
        if first[which] < 0:
            first[which] = k
        return lo
    if x > hi:
        counts[which] += 1
        if first[which] < 0:
            first[which] = k
        return hi
    return x


@njit(cache=True, inline="always")
def _count(cond, counts, first, which, k):
    if cond:
        counts[which] += 1
        if first[which] < 0:
            first[which] = k


@njit(cache=True, inline="always")
def _add(n, counts, first, which, k):
    if n > 0:
        counts[which] += n
        if first[which] < 0:
            first[which] = k


@njit(cache=True, inline="always")
def _bits(prefix, index):
    return random_bits_from_prefix(prefix, index)


@njit(cache=True)
def _table_pos(value, frac, lo, span_log2, lut_bits):
    shift = frac + span_log2 - lut_bits - INTERP_FRAC
    pos = _rs(value - lo, shift, _FLOOR, np.uint64(0))
    top = ((1 << lut_bits) - 1) << INTERP_FRAC
    clamped = pos < 0 or pos > top
    if pos < 0:
        pos = 0
    elif pos > top:
        pos = top
    j = pos >> INTERP_FRAC
    if j > (1 << lut_bits) - 2:
        j = (1 << lut_bits) - 2
    return j, pos - (j << INTERP_FRAC), clamped


def _chunk_impl(X, Y, k0, seed, trials, a_m, a_s, acc, gamma, x, v, sigma, err, post,
                     spikes, counts, first, c, homo_mant, rates_q, sigma_lut, gamma_lut,
                     record_every, rec_w, rec_v, rec_x, rec_am, rec_as, rec_sigma, rec_err,
                     rec_gamma, rec_post, streams, row0, spike_count):
    """Advance the state arrays (in place) over X (T, B, N), Y (T, B, M).

    When ``record_every > 0`` the state after every global step k with
    ``(k + 1) % record_every == 0`` is written to the next row of the ``rec_*`` arrays.
    Writing starts at row ``row0``; returns the next free row.  ``spike_count`` (B, M)
    accumulates the student's output spikes.

    Trials are independent, so the trial loop is a ``prange``: compiled with
    ``parallel=True`` they run on all cores.  Each trial counts its events in its own row
    of a (B, n_counters) table, reduced at the end (first step = the minimum over trials),
    so the counters do not depend on the thread schedule.
    """
    T, B, N = X.shape
    M = Y.shape[2]
    one64 = np.int64(1)
    sfrac = c[K_SFRAC]
    wfrac = c[K_WFRAC]
    bfrac = c[K_BFRAC]
    vtop = one64 << (c[K_VBITS] - 1)
    utop = one64 << (c[K_USP_BITS] - 1)
    btop = one64 << (c[K_BBITS] - 1)
    ptop = one64 << (c[K_PBITS] - 1)
    wtop = one64 << (c[K_WBITS] + c[K_WEXTRA] - 1)
    lim_a = one64 << (61 - c[K_EFRAC])
    lim_b = one64 << (62 - max(c[K_MANT_BITS], 1) - 1)
    sshift = c[K_VBITS] - c[K_SLUT_BITS]
    m_frac = STAT_W_FRAC + RATE_FRAC
    m_lo = np.int64(M_LO) << m_frac
    m_span_log2 = np.int64(np.log2(M_SPAN))
    v_span_log2 = np.int64(np.log2(V_SPAN))
    one_if = one64 << INTERP_FRAC
    xsh = c[K_TRACE_FRAC] + c[K_USP_SH] - c[K_USP_FRAC]
    hsh = c[K_USP_FRAC] + c[K_HOMO_SH] - bfrac
    brnd = c[K_BRND]
    wrnd = c[K_WRND]
    trnd = c[K_TRACE_RND]
    urnd = c[K_USP_RND]
    dm = c[K_DECAY_M]
    ds = c[K_DECAY_S]
    dfrac = c[K_DECAY_FRAC]
    impulse = c[K_IMPULSE]
    tmax = c[K_TRACE_MAX]
    usp_mant = c[K_USP_MANT]
    cu = c[K_CU]
    wextra = c[K_WEXTRA]
    dsh = c[K_PFRAC] + bfrac - wfrac - wextra
    n_ctr = counts.shape[0]
    cnt_all = np.zeros((B, n_ctr), np.int64)
    fst_all = np.full((B, n_ctr), -1, np.int64)
    pref = np.empty((T, 9), np.uint64)          # per-step keys of the rounding-site streams
    for t in range(T):
        for q in range(8):
            pref[t, q] = stream_prefix(seed, streams[q], k0 + t)
        pref[t, 8] = stream_prefix(seed, rng.STREAM_STUDENT, k0 + t)
    for b in prange(B):
        homo = np.zeros(N, np.int64)
        w_row = np.zeros(N, np.int64)
        tmp1 = np.zeros(N, np.int64)
        tmp2 = np.zeros(N, np.int64)
        counts_b = cnt_all[b]
        first_b = fst_all[b]
        tb = np.int64(trials[b]) << 32
        for t in range(T):
            k = k0 + t
            p_tr = pref[t, 0]
            p_usp = pref[t, 1]
            p_pot = pref[t, 2]
            p_homo = pref[t, 3]
            p_cwv = pref[t, 4]
            p_het = pref[t, 5]
            p_post = pref[t, 6]
            p_w = pref[t, 7]
            p_out = pref[t, 8]
            # 1.-2. traces and USP, per afferent (shared by the M neurons); constants in
            # locals, saturation counted locally and flushed once per step
            n_tsat = 0
            n_usat = 0
            am_row = a_m[b]
            as_row = a_s[b]
            x_row = x[b]
            for i in range(N):
                tmp1[i] = am_row[i] * dm
                tmp2[i] = as_row[i] * ds
            shift_right_row(tmp1, tmp1, dfrac, trnd, p_tr, tb, 2)
            shift_right_row(tmp2, tmp2, dfrac, trnd, p_tr, tb + 1, 2)
            for i in range(N):
                spk = np.int64(X[t, b, i]) * impulse
                am = tmp1[i] + spk
                as_ = tmp2[i] + spk
                if am > tmax:
                    am = tmax
                    n_tsat += 1
                if as_ > tmax:
                    as_ = tmax
                    n_tsat += 1
                am_row[i] = am
                as_row[i] = as_
                tmp1[i] = (am - as_) * usp_mant
            shift_right_row(tmp1, tmp1, xsh, urnd, p_usp, tb, 1)
            for i in range(N):
                xi = tmp1[i]
                if xi < -utop:
                    xi = -utop
                    n_usat += 1
                elif xi > utop - 1:
                    xi = utop - 1
                    n_usat += 1
                x_row[i] = xi
                tmp2[i] = xi * homo_mant[i]
            shift_right_row(homo, tmp2, hsh, brnd, p_homo, tb, 1)
            _add(n_tsat, counts_b, first_b, C_TRACE, k)
            _add(n_usat, counts_b, first_b, C_USP, k)
            for j in range(M):
                # 3.-4. visible weights and V
                vacc = np.int64(0)
                psh = wfrac + c[K_USP_FRAC] - c[K_VFRAC] - V_GUARD_BITS
                acc_row = acc[b, j]
                for i in range(N):
                    w_row[i] = acc_row[i] >> wextra
                if psh > 0:                     # floor rounding of each product
                    for i in range(N):
                        vacc += (w_row[i] * x_row[i]) >> psh
                else:
                    for i in range(N):
                        vacc += (w_row[i] * x_row[i]) << (-psh)
                r = np.uint64(0)
                if c[K_VRND] == _STOCH:
                    r = _bits(p_pot, tb + j)
                vj = _rs(vacc, V_GUARD_BITS, c[K_VRND], r)
                vj = _clip(vj, -vtop, vtop - 1, counts_b, first_b, C_V, k)
                v[b, j] = vj
                # 5. gamma_s
                if k % c[K_GEPOCH] == 0:
                    macc = np.int64(0)
                    vsq = np.int64(0)
                    for i in range(N):
                        ws = _rs(w_row[i], wfrac - STAT_W_FRAC, _FLOOR, np.uint64(0))
                        macc += ws * rates_q[i]
                        vsq += ws * ws * rates_q[i]
                    vsq = _rs(vsq, 2 * STAT_W_FRAC + RATE_FRAC - STAT_V_FRAC, _FLOOR, np.uint64(0))
                    vq = _rs(vsq * c[K_INVC_MANT], c[K_INVC_SH], _FLOOR, np.uint64(0))
                    jm, tm, cm = _table_pos(macc, m_frac, m_lo, m_span_log2, c[K_GM_BITS])
                    jv, tv, cv = _table_pos(vq, STAT_V_FRAC, 0, v_span_log2, c[K_GV_BITS])
                    lo = gamma_lut[jm, jv] * (one_if - tv) + gamma_lut[jm, jv + 1] * tv
                    hi = gamma_lut[jm + 1, jv] * (one_if - tv) + gamma_lut[jm + 1, jv + 1] * tv
                    gamma[b, j] = _rs(lo * (one_if - tm) + hi * tm, 2 * INTERP_FRAC, _HALF_UP,
                                      np.uint64(0))
                    _count(cm or cv, counts_b, first_b, C_GAMMA, k)
                # 6.-7. sigma and error
                pos = vj + (one64 << (c[K_VBITS] - 1))
                js = pos >> sshift
                sj = sigma_lut[js]
                if c[K_SINTERP] != 0 and sshift > 0:
                    ts = pos - (js << sshift)
                    sj = sj + _rs((sigma_lut[js + 1] - sigma_lut[js]) * ts, sshift, _HALF_UP,
                                  np.uint64(0))
                sigma[b, j] = sj
                ej = (np.int64(Y[t, b, j]) << c[K_EFRAC]) - _rs(
                    sj * c[K_PHIDT_MANT], sfrac + c[K_PHIDT_SH] - c[K_EFRAC], _HALF_UP, np.uint64(0))
                err[b, j] = ej
                # 8. post factor
                pa = _rs(gamma[b, j] * ((one64 << sfrac) - sj), c[K_GFRAC] + sfrac - POST_A_FRAC,
                         _HALF_UP, np.uint64(0))
                pa = _clip(pa, -lim_a, lim_a, counts_b, first_b, C_POST, k)
                pb = _rs(pa * ej, POST_A_FRAC + c[K_EFRAC] - POST_B_FRAC, _HALF_UP, np.uint64(0))
                pb = _clip(pb, -lim_b, lim_b, counts_b, first_b, C_POST, k)
                r = np.uint64(0)
                if c[K_PRND] == _STOCH:
                    r = _bits(p_post, tb + j)
                pj = _rs(pb * c[K_ETA_MANT], POST_B_FRAC + c[K_ETA_SH] - c[K_PFRAC], c[K_PRND], r)
                pj = _clip(pj, -ptop, ptop - 1, counts_b, first_b, C_POST, k)
                post[b, j] = pj
                # 9.-10. bracket and weight update
                if c[K_BRND] == _STOCH:
                    r = _bits(p_cwv, tb + j)
                cwv = _rs(vj * c[K_CW_MANT], c[K_VFRAC] + c[K_CW_SH] - bfrac, c[K_BRND], r)
                cwv = _clip(cwv, -btop, btop - 1, counts_b, first_b, C_BRACKET, k)
                # per-synapse loop: constants in locals, events counted locally and
                # flushed once per neuron (same counts and first steps, fewer stores)
                n_bsat = 0
                n_wsat = 0
                n_under = 0
                for i in range(N):
                    tmp1[i] = cwv * w_row[i]
                shift_right_row(tmp1, tmp1, wfrac, brnd, p_het, tb + j * N, 1)
                for i in range(N):
                    br = homo[i] - cu + tmp1[i]
                    if br < -btop:
                        br = -btop
                        n_bsat += 1
                    elif br > btop - 1:
                        br = btop - 1
                        n_bsat += 1
                    tmp2[i] = pj * br
                shift_right_row(tmp1, tmp2, dsh, wrnd, p_w, tb + j * N, 1)
                for i in range(N):
                    dw = tmp1[i]
                    if dw == 0 and tmp2[i] != 0:
                        n_under += 1
                    a = acc_row[i] + dw
                    if a < -wtop:
                        a = -wtop
                        n_wsat += 1
                    elif a > wtop - 1:
                        a = wtop - 1
                        n_wsat += 1
                    acc_row[i] = a
                _add(n_bsat, counts_b, first_b, C_BRACKET, k)
                _add(n_under, counts_b, first_b, C_WUNDER, k)
                _add(n_wsat, counts_b, first_b, C_WSAT, k)
                # 11. student spike
                thr = _rs(sj * c[K_PHIDT_MANT], sfrac + c[K_PHIDT_SH] - 53, _FLOOR, np.uint64(0))
                bits = _bits(p_out, tb + j) >> np.uint64(11)
                spikes[b, j] = 1 if bits < np.uint64(thr) else 0
                spike_count[b, j] += spikes[b, j]
            if record_every > 0 and (k + 1) % record_every == 0:
                row = row0 + (k + 1) // record_every - k0 // record_every - 1
                for i in range(N):
                    rec_x[row, b, i] = x[b, i]
                    rec_am[row, b, i] = a_m[b, i]
                    rec_as[row, b, i] = a_s[b, i]
                for j in range(M):
                    rec_v[row, b, j] = v[b, j]
                    rec_sigma[row, b, j] = sigma[b, j]
                    rec_err[row, b, j] = err[b, j]
                    rec_gamma[row, b, j] = gamma[b, j]
                    rec_post[row, b, j] = post[b, j]
                    for i in range(N):
                        rec_w[row, b, j, i] = acc[b, j, i] >> wextra
    for b in range(B):                          # reduce the per-trial counters
        for q in range(n_ctr):
            counts[q] += cnt_all[b, q]
            f = fst_all[b, q]
            if f >= 0 and (first[q] < 0 or f < first[q]):
                first[q] = f
    if record_every > 0:
        return row0 + (k0 + T) // record_every - k0 // record_every
    return row0


run_chunk_kernel = njit(cache=True)(_chunk_impl)
run_chunk_kernel_parallel = njit(cache=True, parallel=True)(_chunk_impl)

_STREAM_ORDER = ("trace_m", "usp", "potential", "homo", "cw_v", "hetero", "post", "weights")


def kernel_args(d: Discretized, state: State, seed: int, record_every: int, rec_int: dict,
                row: int, spike_count: np.ndarray) -> tuple:
    """Arguments of :func:`run_chunk_kernel` after ``(X, Y, k0)``, bound to ``state``.

    The state arrays are passed as they are (the kernel updates them in place), so callers
    that step repeatedly (the Lava process) can bind once and call the kernel per step.
    """
    streams = np.array([STREAM_SITE[s] for s in _STREAM_ORDER], np.uint64)
    return (np.uint64(seed), state.trials, state.a_m, state.a_s, state.acc, state.gamma,
            state.x, state.v, state.sigma, state.err, state.post, state.spikes, state.counts,
            state.first, pack_constants(d), d.homo_mant, d.rates_q, d.sigma_lut, d.gamma_lut,
            np.int64(record_every), rec_int["weights"], rec_int["potential"], rec_int["usp"],
            rec_int["trace_m"], rec_int["trace_s"], rec_int["sigma"], rec_int["error"],
            rec_int["gamma_s"], rec_int["post"], streams, np.int64(row), spike_count)


def run_chunk(d: Discretized, state: State, X, Y, seed: int, record_every: int, rec_int: dict,
              row: int, spike_count: np.ndarray, parallel: bool = False) -> int:
    """Advance ``state`` over one chunk with the fused kernel; same contract as the numpy
    loop in :func:`emulator.run.run`.  Returns the next free recording row.

    ``parallel=True`` spreads the trials over numba's threads.  It is opt-in: starting
    numba's thread pool fixes the process's multiprocessing start method, after which
    libraries that set it themselves at import (Lava 0.10 does) fail to import.
    """
    k0 = state.step
    kernel = run_chunk_kernel_parallel if parallel and X.shape[1] > 1 else run_chunk_kernel
    row = kernel(
        np.ascontiguousarray(X, np.uint8), np.ascontiguousarray(Y, np.uint8), np.int64(k0),
        *kernel_args(d, state, seed, record_every, rec_int, row, spike_count))
    state.step = k0 + X.shape[0]
    return int(row)
