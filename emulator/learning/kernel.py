"""The fused numba kernel: :func:`neuron_step` + :func:`synapse_step`, element by element.

The same arithmetic as :mod:`.neuron` and :mod:`.lava_replica`, compiled into one loop
over steps, trials, neurons and synapses; it must stay bit-identical to them
(``tests/test_lava_path2.py`` compares the two backends, ``tests/test_golden.py`` pins the
bits).  Every width and format comes from the design's ``engine`` / ``neuron`` records,
packed by :func:`pack` into the constant array ``kc``.  Lava has no counterpart: its
``LearningDense`` runs in Python (see ``lava/magma/core/learning/learning_rule_applier.py``).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from fixedpoint.jit import (HALF_UP, random_bits_from_prefix, saturate, shift_right,
                            stream_prefix)

from .constants import (STREAM_D_ROUND, STREAM_EVENT, STREAM_VQ, STREAM_W_ROUND, STREAM_X_ROUND,
                        STREAM_Y_ROUND)
from .rule_design import Design, u_exponent

_R0 = np.uint64(0)    #: random word for deterministic rounding modes (ignored)
_VAR_CODE = {"x1": 0, "x2": 1, "y1": 2, "y2": 3, "y3": 4, "w": 5, "t": 6, "d": 7}
_KC_NAMES = (
    # design integers
    "DM", "DS", "VK_MANT", "VK_SH", "PHIDT_MANT", "PHIDT_SH", "A_MANT", "A_SH", "K_MANT",
    "K_SH", "VQ_MANT", "VQ_SH", "KX", "WEXP",
    # neuron formats (NeuronSpec)
    "F_A", "F_D", "F_V", "V_BITS", "F_S", "SIG_SPAN", "SIG_NODE_FRAC", "SIG_INTERP", "F_E",
    "F_H", "H_TAU_SHIFT", "GAMMA_EVERY", "F_G", "G_BITS", "F_P", "Y_EVENT", "Y_OFFSET",
    # engine (EngineSpec) and the rule layout
    "TRACE_BITS", "SYN_BITS", "ACC_BITS", "ACC_SHIFT", "T_EPOCH", "W_PER_SYN", "T_PER_SYN",
    "ALL_Y0", "U_K", "N_DW", "Y2_CONST")
for _i, _n in enumerate(_KC_NAMES):
    globals()[f"KC_{_n}"] = _i
N_KC = len(_KC_NAMES)


def pack(d: Design, products):
    """The design's integers, formats and the product tables, as arrays for :func:`run_chunk`.

    Returns
    -------
    kc : (N_KC,) int64
        Constants, indexed by ``KC_*`` (design integers, ``d.neuron``, ``d.engine``).
    ptab : (P, 8) int64
        Per product (the dw products, then the dd products): dependency (1 = y0, 0 = u),
        mantissa, exponent, right shift, number of factors, then the factors' variable codes
        (``_VAR_CODE``).
    pconst : (P, 3) int64
        The constant added to each factor (``(y3 - 64)`` -> -64).
    """
    nf, e = d.neuron, d.engine
    allp = tuple(products) + tuple(d.dd_products)
    ks = {u_exponent(p.dep) for p in allp} - {None}
    if len(ks) > 1:
        raise ValueError("one u<k> per rule set (as Lava)")
    vals = dict(
        DM=d.dm, DS=d.ds, VK_MANT=d.vk_mant, VK_SH=d.vk_shift, PHIDT_MANT=d.phidt_mant,
        PHIDT_SH=d.phidt_shift, A_MANT=d.a_mant, A_SH=d.a_shift, K_MANT=d.k_mant,
        K_SH=d.k_shift, VQ_MANT=d.vq_mant, VQ_SH=d.vq_shift, KX=d.k_x, WEXP=d.weight_exp,
        F_A=nf.filter_frac, F_D=nf.decay_frac, F_V=nf.v_frac, V_BITS=nf.v_bits,
        F_S=nf.sigma_frac, SIG_SPAN=nf.sigma_span_mv, SIG_NODE_FRAC=nf.sigma_node_frac,
        SIG_INTERP=int(bool(nf.sigma_interpolate)), F_E=nf.error_frac, F_H=nf.hbar_frac,
        H_TAU_SHIFT=nf.hbar_tau_shift, GAMMA_EVERY=nf.gamma_every, F_G=nf.gamma_frac,
        G_BITS=nf.gamma_bits, F_P=nf.prob_frac, Y_EVENT=d.y_event, Y_OFFSET=d.y_offset,
        TRACE_BITS=e.trace_bits, SYN_BITS=e.synaptic_bits, ACC_BITS=e.accumulator_bits,
        ACC_SHIFT=e.acc_shift, T_EPOCH=e.t_epoch,
        W_PER_SYN=int(e.weight_rounding == "per_synapse"),
        T_PER_SYN=int(e.trace_rounding == "per_synapse"), ALL_Y0=int(bool(d.all_y0)),
        U_K=ks.pop() if ks else 0, N_DW=len(products), Y2_CONST=d.y2_const)
    kc = np.array([vals[n] for n in _KC_NAMES], np.int64)
    ptab = np.zeros((len(allp), 8), np.int64)    # dep (1 = y0), mant, exp, shift, nf, vars
    pconst = np.zeros((len(allp), 3), np.int64)
    for j, pr in enumerate(allp):
        if len(pr.factors) > 3 or pr.dep == "x0":
            raise ValueError("the numba kernel supports u/y0 products of <= 3 factors")
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


@njit(cache=True, inline="always")
def _unit_i(word):
    """uint64 word -> float64 in [0, 1): :func:`emulator.learning.lava_replica._unit`."""
    return np.float64(word >> np.uint64(11)) * 2.0 ** -53


@njit(cache=True)
def _apply(ptab, pconst, q0, q1, acc, vy0, vu, bapm, u, trace_bits, syn_bits, acc_bits,
           acc_shift):
    """Products ``q0 .. q1 - 1`` added to ``acc`` (Lava's fixed-point applier, one synapse);
    returns (acc, 1 if a clip changed it else 0)."""
    lo = -(np.int64(1) << acc_bits) - 1
    hi = (np.int64(1) << acc_bits) - 1
    sat = 0
    for q in range(q0, q1):
        if ptab[q, 0] == 1:
            if bapm == 0:
                continue
            vals = vy0
        else:
            if u == 0:
                continue
            vals = vu
        cur = np.int64(1)
        for f in range(ptab[q, 4]):
            var = ptab[q, 5 + f]
            wd = trace_bits if var <= 4 else syn_bits
            cur *= saturate(vals[var] + pconst[q, f], -(np.int64(1) << wd),
                            (np.int64(1) << wd) - 1)
        cur = ((cur * ptab[q, 1]) >> ptab[q, 3]) << (ptab[q, 2] + acc_shift)
        new = saturate(acc + saturate(cur, lo, hi), lo, hi)
        if new != acc + cur:
            sat = 1
        acc = new
    return acc, sat


@njit(cache=True)
def run_chunk(kc, lut, ptab, pconst, tags, dec_x, dec_y, X, Y, rx, ry, rw, k0, seed, trials,
              W, xtr, a_buff, a_m, a_s, hbar, gamma, vlast, slast, elast, plast, counts, events,
              rec_every, rec, row, pend, sent, tx, ty, yr, dtag, scounts):
    """Steps ``k0 .. k0 + n - 1`` of neuron + LearningDense, in place; returns the next ``row``.

    ``X``, ``Y`` (n, B, N) / (n, B, M): input and teacher spikes; ``rx``, ``ry`` (n, B) and
    ``rw`` (n,): Lava's random numbers (:class:`LavaRandoms`); ``dec_x`` (2,), ``dec_y``:
    ``exp(-1/tau)`` of the x and y traces.  The state arrays are those of
    :class:`SynapseState` (``W``, ``xtr``, ``a_buff``, ``tx``, ``ty``, ``yr``, ``dtag``,
    ``scounts``) and :class:`NeuronState` (``a_m`` ... ``counts``, ``pend``, ``sent``), in
    their formats; ``events`` (B, M, 2) counts positive / negative events sent.
    Every ``rec_every`` steps (0: never) ``W`` is copied into ``rec[row]``.
    """
    n, B, N = X.shape
    M = W.shape[1]
    P = ptab.shape[0]
    n_dw = kc[KC_N_DW]
    fa, fd, fv, fs, fe = kc[KC_F_A], kc[KC_F_D], kc[KC_F_V], kc[KC_F_S], kc[KC_F_E]
    fh, fg, fp = kc[KC_F_H], kc[KC_F_G], kc[KC_F_P]
    ye, yo = kc[KC_Y_EVENT], kc[KC_Y_OFFSET]
    trace_bits, syn_bits = kc[KC_TRACE_BITS], kc[KC_SYN_BITS]
    acc_bits, acc_shift = kc[KC_ACC_BITS], kc[KC_ACC_SHIFT]
    te = kc[KC_T_EPOCH]
    all_y0 = kc[KC_ALL_Y0] == 1
    w_per_syn = kc[KC_W_PER_SYN] == 1
    t_per_syn = kc[KC_T_PER_SYN] == 1
    tmax = (np.int64(1) << trace_bits) - 1
    wtop = np.int64(1) << (syn_bits - 1)
    acc_mask = (np.int64(1) << acc_shift) - 1
    bap = np.zeros(M, np.int64)
    y1v = np.zeros(M, np.int64)
    y2v = np.zeros(M, np.int64)
    y3v = np.zeros(M, np.int64)
    xh = np.zeros((te + 1, 2, N), np.int64)
    yh = np.zeros((te + 1, 3, M), np.int64)
    vy0 = np.zeros(8, np.int64)
    vu = np.zeros(8, np.int64)
    vtop = np.int64(1) << (kc[KC_V_BITS] - 1)
    one = np.int64(1) << fp
    gtop = (np.int64(1) << kc[KC_G_BITS]) - 1
    gnum = np.int64(1) << (fg + fh + kc[KC_A_SH])
    sub = fv - kc[KC_SIG_NODE_FRAC]
    span = np.int64(kc[KC_SIG_SPAN]) << fv
    interp = kc[KC_SIG_INTERP] == 1
    vqsh = fv + kc[KC_VQ_SH]
    vqmask = (np.uint64(1) << np.uint64(vqsh)) - np.uint64(1)
    for t in range(n):
        k = k0 + t
        pe = stream_prefix(seed, STREAM_EVENT, k)
        pv = stream_prefix(seed, STREAM_VQ, k)
        ts = k % te + 1
        last = (k + 1) % te == 0
        for b in range(B):
            # ---- learning neuron
            for m in range(M):
                a_in = a_buff[b, m]
                am = _hu_i(a_m[b, m] * kc[KC_DM], fd) + (a_in << fa)
                as_ = _hu_i(a_s[b, m] * kc[KC_DS], fd) + (a_in << fa)
                a_m[b, m] = am
                a_s[b, m] = as_
                diff = _hu_i(am * kc[KC_DM] - as_ * kc[KC_DS], fd)
                v = _hu_i(diff * kc[KC_VK_MANT], fa + kc[KC_VK_SH] - fv)
                if v < -vtop or v > vtop - 1:
                    counts[0] += 1
                    v = saturate(v, -vtop, vtop - 1)
                pos = saturate(v + span, 0, 2 * span - 1)
                if interp:
                    j = pos >> sub
                    tt = pos - (j << sub)
                    s = lut[j] + _hu_i((lut[j + 1] - lut[j]) * tt, sub)
                else:
                    s = lut[_hu_i(pos, sub)]
                s1 = (np.int64(1) << fs) - s
                e = (np.int64(Y[t, b, m]) << fe) - _hu_i(s * kc[KC_PHIDT_MANT],
                                                          fs + kc[KC_PHIDT_SH] - fe)
                h = _hu_i(_hu_i(s * s1, fs) * s1, fs)
                hb = hbar[b, m] + _hu_i((h << (fh - fs)) - hbar[b, m], kc[KC_H_TAU_SHIFT])
                hbar[b, m] = hb
                if k % kc[KC_GAMMA_EVERY] == 0:
                    den = hb * kc[KC_A_MANT]
                    g = gnum // den if den > 0 else gtop + 1
                    if g > gtop:
                        counts[3] += 1
                        g = gtop
                    gamma[b, m] = g
                g1 = _hu_i(gamma[b, m] * s1, fg + fs - fp)
                g2 = _hu_i(g1 * (e if e >= 0 else -e), fe)
                p = _hu_i(g2 * kc[KC_K_MANT], kc[KC_K_SH])
                if p > one:
                    counts[1] += 1
                    p = one
                idx = (trials[b] << 32) | m
                r = np.int64(random_bits_from_prefix(pe, idx) >> np.uint64(64 - fp))
                ev = r < p
                # events -> bap / y1 / y2 (neuron.send_events)
                if ev and e > 0:
                    pend[b, m, 0] += 1
                if ev and e < 0:
                    pend[b, m, 1] += 1
                if k % te == 0:
                    sent[b, m] = 0
                go_p = False
                go_n = False
                if all_y0:
                    bp = 1 if (pend[b, m, 0] + pend[b, m, 1] > 0 and sent[b, m] == 0) else 0
                    sent[b, m] |= bp
                    if last and sent[b, m] > 0:
                        go_p = pend[b, m, 0] > 0
                        go_n = pend[b, m, 1] > 0
                else:
                    bp = 1 if (pend[b, m, 0] > 0 and sent[b, m] == 0) else 0
                    pend[b, m, 0] -= bp
                    sent[b, m] |= bp
                    go_n = last and pend[b, m, 1] > 0
                if go_p:
                    pend[b, m, 0] -= 1
                if go_n:
                    pend[b, m, 1] -= 1
                bap[m] = bp
                y1v[m] = ye if go_n else 0
                y2v[m] = (ye if go_p else 0) if all_y0 else kc[KC_Y2_CONST]
                low = np.int64(random_bits_from_prefix(pv, idx) & vqmask)
                vq = (v * kc[KC_VQ_MANT] + low) >> vqsh
                if vq < -yo or vq > yo - 1:
                    counts[2] += 1
                    vq = saturate(vq, -yo, yo - 1)
                y3v[m] = vq + yo
                vlast[b, m] = v
                slast[b, m] = s
                elast[b, m] = e
                plast[b, m] = p
                events[b, m, 0] += (1 if go_p else 0) if all_y0 else bp
                events[b, m, 1] += 1 if go_n else 0
            # ---- Dense: a_buff for the next step (pre-learning weights)
            for m in range(M):
                acc = np.int64(0)
                for i in range(N):
                    if X[t, b, i]:
                        acc += W[b, m, i]
                a_buff[b, m] = acc << kc[KC_WEXP]
            # ---- spiking phase of LearningDense: spike times, second-spike impulses, y
            for i in range(N):
                if X[t, b, i]:
                    if tx[b, i] > 0:
                        for jj in range(2):
                            xtr[b, jj, i] = saturate(xtr[b, jj, i] + kc[KC_KX], 0, tmax)
                    tx[b, i] = ts
            for m in range(M):
                if bap[m]:
                    ty[b, m] = ts
                yr[b, 0, m] = y1v[m]
                yr[b, 1, m] = y2v[m]
                yr[b, 2, m] = y3v[m]
            if not last:
                continue
            # ---- learning phase: trace histories through the epoch
            for i in range(N):
                for jj in range(2):
                    xh[0, jj, i] = xtr[b, jj, i]
            for m in range(M):
                for jj in range(3):
                    yh[0, jj, m] = yr[b, jj, m]
            for st in range(1, te + 1):
                kk = k + 1 - te + st - 1
                if t_per_syn:
                    px = stream_prefix(seed, STREAM_X_ROUND, kk)
                    py = stream_prefix(seed, STREAM_Y_ROUND, kk)
                for i in range(N):
                    for jj in range(2):
                        if t_per_syn:
                            r_x = _unit_i(random_bits_from_prefix(px, (trials[b] << 32)
                                                                  | (jj * N + i)))
                        else:
                            r_x = rx[t, b]
                        val = dec_x[jj] * xh[st - 1, jj, i]
                        fl = np.floor(val)
                        nv = np.int64(fl) + (1 if r_x < val - fl else 0)
                        if tx[b, i] == st:
                            nv = saturate(nv + kc[KC_KX], 0, tmax)
                        xh[st, jj, i] = nv
                for m in range(M):
                    for jj in range(3):
                        if t_per_syn:
                            r_y = _unit_i(random_bits_from_prefix(py, (trials[b] << 32)
                                                                  | (jj * M + m)))
                        else:
                            r_y = ry[t, b]
                        val = dec_y * yh[st - 1, jj, m]
                        fl = np.floor(val)
                        yh[st, jj, m] = np.int64(fl) + (1 if r_y < val - fl else 0)
            for i in range(N):
                for jj in range(2):
                    xtr[b, jj, i] = xh[te, jj, i]
            u = 1 if ((k + 1) // te) % (np.int64(1) << kc[KC_U_K]) == 0 else 0
            pw = stream_prefix(seed, STREAM_W_ROUND, k)
            pd = stream_prefix(seed, STREAM_D_ROUND, k)
            for m in range(M):
                tym = ty[b, m]
                bapm = 1 if tym > 0 else 0
                vy0[2] = yh[tym, 0, m]
                vy0[3] = yh[tym, 1, m]
                vy0[4] = yh[tym, 2, m]
                vu[2] = yh[te, 0, m]
                vu[3] = yh[te, 1, m]
                vu[4] = yh[te, 2, m]
                for i in range(N):
                    w = W[b, m, i]
                    dv = dtag[b, m, i]
                    vy0[0] = xh[tym, 0, i]
                    vy0[1] = xh[tym, 1, i]
                    vu[0] = xh[te, 0, i]
                    vu[1] = xh[te, 1, i]
                    vy0[5] = w
                    vu[5] = w
                    vy0[6] = tags[i]
                    vu[6] = tags[i]
                    vy0[7] = dv
                    vu[7] = dv
                    sidx = (trials[b] << 32) | (m * N + i)
                    acc, sat = _apply(ptab, pconst, 0, n_dw, w << acc_shift, vy0, vu, bapm, u,
                                      trace_bits, syn_bits, acc_bits, acc_shift)
                    qq = acc >> acc_shift
                    rem = acc & acc_mask
                    if w_per_syn:
                        rb = np.int64(random_bits_from_prefix(pw, sidx)
                                      >> np.uint64(64 - acc_shift))
                        if rb < rem:
                            qq += 1
                    elif rw[t] < rem / np.float64(np.int64(1) << acc_shift):
                        qq += 1
                    if qq < -wtop or qq > wtop - 1:
                        scounts[1] += 1
                        qq = saturate(qq, -wtop, wtop - 1)
                    if P > n_dw:
                        accd, satd = _apply(ptab, pconst, n_dw, P, dv << acc_shift, vy0, vu,
                                            bapm, u, trace_bits, syn_bits, acc_bits, acc_shift)
                        sat |= satd
                        if accd < 0:
                            scounts[0] += 1
                            accd = 0
                        qd = accd >> acc_shift
                        remd = accd & acc_mask
                        if w_per_syn:
                            rb = np.int64(random_bits_from_prefix(pd, sidx)
                                          >> np.uint64(64 - acc_shift))
                            if rb < remd:
                                qd += 1
                        elif rw[t] < remd / np.float64(np.int64(1) << acc_shift):
                            qd += 1
                        if qd > 2 * wtop - 1:
                            scounts[0] += 1
                            qd = 2 * wtop - 1
                        dtag[b, m, i] = qd
                    W[b, m, i] = qq
                    scounts[2] += sat
            for i in range(N):
                tx[b, i] = 0
            for m in range(M):
                ty[b, m] = 0
        if rec_every > 0 and (k + 1) % rec_every == 0:
            rec[row] = W
            row += 1
    return row
