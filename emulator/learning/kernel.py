"""The fused numba kernel: :func:`neuron_step` + :func:`synapse_step`, element by element.

The same arithmetic as :mod:`.neuron` and :mod:`.lava_replica`, compiled into one loop
over steps, trials, neurons and synapses; it must stay bit-identical to them
(``tests/test_lava_path2.py`` compares the two backends, ``tests/test_golden.py`` pins the
bits).  Lava has no counterpart: its ``LearningDense`` runs in Python (see
``lava/magma/core/learning/learning_rule_applier.py``).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from fixedpoint.jit import (HALF_UP, random_bits_from_prefix, saturate, shift_right,
                            stream_prefix)

from .constants import (ACC_HI, ACC_LO, ACC_SHIFT, F_A, F_D, F_E, F_G, F_H, F_P, F_S, F_V,
                        G_BITS, GAMMA_EVERY, H_TAU_SHIFT, SIG_NODE_FRAC, SIG_SPAN, STREAM_EVENT,
                        STREAM_VQ, TRACE_MAX, V_BITS, W_HI, W_LO, W_SYN, W_TRACE, Y_EVENT,
                        Y_OFFSET)
from .rule_design import Design

_R0 = np.uint64(0)    #: random word for deterministic rounding modes (ignored)
_VAR_CODE = {"x1": 0, "x2": 1, "y1": 2, "y2": 3, "y3": 4, "w": 5, "t": 6}
(KC_DM, KC_DS, KC_VK_MANT, KC_VK_SH, KC_PHIDT_MANT, KC_PHIDT_SH, KC_A_MANT, KC_A_SH,
 KC_K_MANT, KC_K_SH, KC_VQ_MANT, KC_VQ_SH, KC_KX, KC_WEXP, N_KC) = range(15)


def pack(d: Design, products):
    """The design's integers and the product table, as arrays for :func:`run_chunk`.

    Returns
    -------
    kc : (N_KC,) int64
        Neuron constants, indexed by ``KC_*``.
    ptab : (P, 8) int64
        Per product: dependency (1 = y0, 0 = u0), mantissa, exponent, right shift, number
        of factors, then the factors' variable codes (``_VAR_CODE``).
    pconst : (P, 3) int64
        The constant added to each factor (``(y3 - 64)`` -> -64).
    """
    kc = np.zeros(N_KC, np.int64)
    for i, v in ((KC_DM, d.dm), (KC_DS, d.ds), (KC_VK_MANT, d.vk_mant), (KC_VK_SH, d.vk_shift),
                 (KC_PHIDT_MANT, d.phidt_mant), (KC_PHIDT_SH, d.phidt_shift),
                 (KC_A_MANT, d.a_mant), (KC_A_SH, d.a_shift), (KC_K_MANT, d.k_mant),
                 (KC_K_SH, d.k_shift), (KC_VQ_MANT, d.vq_mant), (KC_VQ_SH, d.vq_shift),
                 (KC_KX, d.k_x), (KC_WEXP, d.weight_exp)):
        kc[i] = v
    ptab = np.zeros((len(products), 8), np.int64)    # dep (1 = y0), mant, exp, shift, nf, vars
    pconst = np.zeros((len(products), 3), np.int64)
    for j, pr in enumerate(products):
        if len(pr.factors) > 3 or pr.dep == "x0":
            raise ValueError("the numba kernel supports u0/y0 products of <= 3 factors")
        ptab[j, :5] = (1 if pr.dep == "y0" else 0, pr.mant, pr.exp, pr.shift, len(pr.factors))
        for f, (var, const) in enumerate(pr.factors):
            ptab[j, 5 + f] = _VAR_CODE[var]
            pconst[j, f] = const
    return kc, ptab, pconst


@njit(cache=True, inline="always")
def _hu_i(x, s):
    """Round half up of ``x / 2**s``: :func:`fixedpoint.jit.shift_right` in mode HALF_UP.

    Scalar twin of :func:`emulator.learning.neuron._hu` (same bits; see there).
    """
    return shift_right(x, s, HALF_UP, _R0)


@njit(cache=True)
def run_chunk(kc, lut, ptab, pconst, tags, dec_x, dec_y, X, Y, rx, ry, rw, k0, seed, trials,
              W, xtr, a_buff, a_m, a_s, hbar, gamma, vlast, slast, elast, plast, counts, events,
              rec_every, rec, row):
    """Steps ``k0 .. k0 + n - 1`` of neuron + LearningDense, in place; returns the next ``row``.

    ``X``, ``Y`` (n, B, N) / (n, B, M): input and teacher spikes; ``rx``, ``ry`` (n, B) and
    ``rw`` (n,): Lava's random numbers (:class:`LavaRandoms`); ``dec_x`` (2,), ``dec_y``:
    ``exp(-1/tau)`` of the x and y traces.  The state arrays are those of
    :class:`SynapseState` (``W``, ``xtr``, ``a_buff``) and :class:`NeuronState` (``a_m`` ...
    ``counts``), in their formats; ``events`` (B, M, 2) counts positive / negative events.
    Every ``rec_every`` steps (0: never) ``W`` is copied into ``rec[row]``.
    """
    n, B, N = X.shape
    M = W.shape[1]
    P = ptab.shape[0]
    bap = np.zeros(M, np.int64)
    y1v = np.zeros(M, np.int64)
    y3v = np.zeros(M, np.int64)
    ys = np.zeros((3, M), np.int64)
    vals = np.zeros(7, np.int64)
    vtop = np.int64(1) << (V_BITS - 1)
    one = np.int64(1) << F_P
    gtop = (np.int64(1) << G_BITS) - 1
    gnum = np.int64(1) << (F_G + F_H + kc[KC_A_SH])
    sub = F_V - SIG_NODE_FRAC
    poshi = (np.int64(2 * SIG_SPAN) << F_V) - 1
    vqsh = F_V + kc[KC_VQ_SH]
    vqmask = (np.uint64(1) << np.uint64(vqsh)) - np.uint64(1)
    for t in range(n):
        k = k0 + t
        pe = stream_prefix(seed, STREAM_EVENT, k)
        pv = stream_prefix(seed, STREAM_VQ, k)
        for b in range(B):
            # ---- learning neuron
            for m in range(M):
                a_in = a_buff[b, m]
                am = _hu_i(a_m[b, m] * kc[KC_DM], F_D) + (a_in << F_A)
                as_ = _hu_i(a_s[b, m] * kc[KC_DS], F_D) + (a_in << F_A)
                a_m[b, m] = am
                a_s[b, m] = as_
                diff = _hu_i(am * kc[KC_DM] - as_ * kc[KC_DS], F_D)
                v = _hu_i(diff * kc[KC_VK_MANT], F_A + kc[KC_VK_SH] - F_V)
                if v < -vtop or v > vtop - 1:
                    counts[0] += 1
                    v = saturate(v, -vtop, vtop - 1)
                pos = saturate(v + (np.int64(SIG_SPAN) << F_V), 0, poshi)
                j = pos >> sub
                tt = pos - (j << sub)
                s = lut[j] + _hu_i((lut[j + 1] - lut[j]) * tt, sub)
                s1 = (np.int64(1) << F_S) - s
                e = (np.int64(Y[t, b, m]) << F_E) - _hu_i(s * kc[KC_PHIDT_MANT],
                                                           F_S + kc[KC_PHIDT_SH] - F_E)
                h = _hu_i(_hu_i(s * s1, F_S) * s1, F_S)
                hb = hbar[b, m] + _hu_i((h << (F_H - F_S)) - hbar[b, m], H_TAU_SHIFT)
                hbar[b, m] = hb
                if k % GAMMA_EVERY == 0:
                    den = hb * kc[KC_A_MANT]
                    g = gnum // den if den > 0 else gtop + 1
                    if g > gtop:
                        counts[3] += 1
                        g = gtop
                    gamma[b, m] = g
                g1 = _hu_i(gamma[b, m] * s1, F_G + F_S - F_P)
                g2 = _hu_i(g1 * (e if e >= 0 else -e), F_E)
                p = _hu_i(g2 * kc[KC_K_MANT], kc[KC_K_SH])
                if p > one:
                    counts[1] += 1
                    p = one
                idx = (trials[b] << 32) | m
                r = np.int64(random_bits_from_prefix(pe, idx) >> np.uint64(64 - F_P))
                ev = r < p
                bap[m] = 1 if (ev and e > 0) else 0
                y1v[m] = Y_EVENT if (ev and e < 0) else 0
                low = np.int64(random_bits_from_prefix(pv, idx) & vqmask)
                vq = (v * kc[KC_VQ_MANT] + low) >> vqsh
                if vq < -Y_OFFSET or vq > Y_OFFSET - 1:
                    counts[2] += 1
                    vq = saturate(vq, -Y_OFFSET, Y_OFFSET - 1)
                y3v[m] = vq + Y_OFFSET
                vlast[b, m] = v
                slast[b, m] = s
                elast[b, m] = e
                plast[b, m] = p
                events[b, m, 0] += bap[m]
                events[b, m, 1] += 1 if y1v[m] > 0 else 0
            # ---- Dense: a_buff for the next step (pre-learning weights)
            for m in range(M):
                acc = np.int64(0)
                for i in range(N):
                    if X[t, b, i]:
                        acc += W[b, m, i]
                a_buff[b, m] = acc << kc[KC_WEXP]
            # ---- received y, decayed once
            for m in range(M):
                for jj in range(3):
                    yv = y1v[m] if jj == 0 else (y3v[m] if jj == 2 else 0)
                    val = dec_y * yv
                    fl = np.floor(val)
                    ys[jj, m] = np.int64(fl) + (1 if ry[t, b] < val - fl else 0)
            # ---- presynaptic traces
            for i in range(N):
                for jj in range(2):
                    val = dec_x[jj] * xtr[b, jj, i]
                    fl = np.floor(val)
                    nv = np.int64(fl) + (1 if rx[t, b] < val - fl else 0)
                    if X[t, b, i]:
                        nv = saturate(nv + kc[KC_KX], 0, TRACE_MAX)
                    xtr[b, jj, i] = nv
            # ---- learning
            for m in range(M):
                for i in range(N):
                    w = W[b, m, i]
                    acc = w << ACC_SHIFT
                    vals[0] = xtr[b, 0, i]
                    vals[1] = xtr[b, 1, i]
                    vals[2] = ys[0, m]
                    vals[3] = ys[1, m]
                    vals[4] = ys[2, m]
                    vals[5] = w
                    vals[6] = tags[i]
                    for q in range(P):
                        if ptab[q, 0] == 1 and bap[m] == 0:
                            continue
                        cur = np.int64(1)
                        for f in range(ptab[q, 4]):
                            var = ptab[q, 5 + f]
                            wd = W_TRACE if var <= 4 else W_SYN
                            cur *= saturate(vals[var] + pconst[q, f], -(np.int64(1) << wd),
                                           (np.int64(1) << wd) - 1)
                        cur = ((cur * ptab[q, 1]) >> ptab[q, 3]) << (ptab[q, 2] + ACC_SHIFT)
                        acc = saturate(acc + saturate(cur, ACC_LO, ACC_HI), ACC_LO, ACC_HI)
                    qq = acc >> ACC_SHIFT
                    rem = acc & ((np.int64(1) << ACC_SHIFT) - 1)
                    if rw[t] < rem / 128.0:
                        qq += 1
                    W[b, m, i] = saturate(qq, W_LO, W_HI)
        if rec_every > 0 and (k + 1) % rec_every == 0:
            rec[row] = W
            row += 1
    return row
