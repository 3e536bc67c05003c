"""One step of the learning-engine kernel (:mod:`.kernel`): the learning neuron, Dense,
and LearningDense's spiking and learning phases of one trial, element by element.

The arithmetic of :func:`.neuron.neuron_step` + :func:`.lava_replica.synapse_step`, bit for
bit.  :func:`le_step` is one function in four marked sections (learning neuron; Dense;
spiking phase; learning phase) rather than four compiled functions, on purpose: split into
four inlined functions the kernel ran 30 % slower (2.33e7 against 3.35e7 synapse-steps/s,
``loihi2`` at B = 1000 serial) and compiled 48 % longer (124 s against 84 s); as calls,
passing the state costs about 13 %.  The helpers that hold loops over synapses are compiled
functions of their own (:mod:`.kernel_ops`, :mod:`.kernel_products`).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from fixedpoint.jit import random_bits_from_prefix, recip_word_jit, saturate, stream_prefix

from .constants import A_OUT_BITS, STREAM_D_ROUND, STREAM_W_ROUND, STREAM_X_ROUND, STREAM_Y_ROUND
from .extremes import (EX_AMOUNT, EX_CARRY, EX_CODED, EX_ERROR, EX_GAMMA, EX_POST, EX_SIGMA,
                       EX_TAG2, EX_V, EX_VQ, EX_W, EX_X1)
from .kernel_layout import (C_CARRY, C_GAMMA, C_INPUT, C_POST_CARRY, C_POTENTIAL, C_VQ,
                            KC_ACC_BITS, KC_ACC_SHIFT, KC_ALL_Y0, KC_CARRY_BITS, KC_DM, KC_DS,
                            KC_EK_FRAC, KC_F_A, KC_F_D, KC_F_E, KC_F_G, KC_F_H, KC_F_P, KC_F_S,
                            KC_F_V, KC_GAMMA_EVERY, KC_GINV_MANT, KC_GINV_SH, KC_GRADED, KC_G_BITS,
                            KC_H_TAU_SHIFT, KC_KX, KC_K_MANT, KC_K_SH, KC_LEVELS, KC_N_DW,
                            KC_PHIDT_MANT, KC_PHIDT_SH, KC_SIG_INTERP, KC_SIG_NODE_FRAC,
                            KC_SIG_SPAN, KC_SYN_BITS, KC_TRACE_BITS, KC_T_EPOCH, KC_T_PER_SYN,
                            KC_UNIT_RATIO, KC_USE_GAMMA, KC_U_K, KC_VK_MANT, KC_VK_SH, KC_VQ_MANT,
                            KC_VQ_SH, KC_V_BITS, KC_WEXP, KC_WORD_BITS, KC_W_PER_SYN, KC_Y2_CONST,
                            KC_Y_EVENT, KC_Y_OFFSET, KC_Y_UNIT, S_ACC, S_TAG, S_TRACE, S_WEIGHT)
from .kernel_ops import copy_ext, ext_i, ext_row, hu_i, impulse_ext, shr_i, unit_i, word_i
from .kernel_products import active, add_product, apply_all, decay_x, round_acc, start_acc


@njit(cache=True, inline="always")
def le_step(k, b, spk, yt, r_x, r_y, r_w, pe, pv, seed, trial, c, st, sc):
    """Step ``k`` of trial ``b`` (global id ``trial``): learning neuron, Dense and
    LearningDense, in place on ``st`` (:class:`LEKernelState`).

    ``spk`` (N,) input and ``yt`` (M,) teacher spikes of this step; ``r_x``, ``r_y``, ``r_w``:
    Lava's random numbers of this step and trial (:class:`.lava_replica.LavaRandoms`);
    ``pe``, ``pv``: the step's stream prefixes of the event and Vq draws.  The arithmetic of
    :func:`.neuron.neuron_step` + :func:`.lava_replica.synapse_step`, element by element.
    """
    kc, lut, ptab, pconst, tags, dec_x, dec_y, rtab = c
    W = st.W
    N = W.shape[2]
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
    vtop = np.int64(1) << (kc[KC_V_BITS] - 1)
    one = np.int64(1) << fp
    gbits = kc[KC_G_BITS]
    wb = kc[KC_WORD_BITS]
    wlo = -(np.int64(1) << (wb - 1))
    whi = (np.int64(1) << (wb - 1)) - 1
    uhi = (np.int64(1) << wb) - 1
    atop = np.int64(1) << (A_OUT_BITS - 1)
    gtop = (np.int64(1) << gbits) - 1
    ekf = kc[KC_EK_FRAC]
    sub = fv - kc[KC_SIG_NODE_FRAC]
    span = np.int64(kc[KC_SIG_SPAN]) << fv
    interp = kc[KC_SIG_INTERP] == 1
    vqsh = fv + kc[KC_VQ_SH]
    vqmask = (np.uint64(1) << np.uint64(vqsh)) - np.uint64(1)
    graded = kc[KC_GRADED] == 1
    n_levels = kc[KC_LEVELS]
    use_gamma = kc[KC_USE_GAMMA] == 1
    ctop = (np.int64(1) << (kc[KC_CARRY_BITS] - 1)) - 1
    bap, y1v, y2v, y3v, xh, yh = sc.bap, sc.y1v, sc.y2v, sc.y3v, sc.xh, sc.yh
    vy0, vu, act = sc.vy0, sc.vu, sc.act
    counts = st.counts
    pend = st.pend
    sent = st.sent
    ts = k % te + 1
    last = (k + 1) % te == 0
    tb = trial << 32
    # ---- learning neuron
    for m in range(M):
        a_in = st.a_buff[b, m]
        if a_in < -atop or a_in > atop - 1:
            counts[C_INPUT] += 1
            a_in = saturate(a_in, -atop, atop - 1)
        am = word_i(hu_i(st.a_m[b, m] * kc[KC_DM], fd) + (a_in << fa), wlo, whi, counts)
        as_ = word_i(hu_i(st.a_s[b, m] * kc[KC_DS], fd) + (a_in << fa), wlo, whi, counts)
        st.a_m[b, m] = am
        st.a_s[b, m] = as_
        diff = word_i(hu_i(am * kc[KC_DM] - as_ * kc[KC_DS], fd), wlo, whi, counts)
        v = hu_i(diff * kc[KC_VK_MANT], fa + kc[KC_VK_SH] - fv)
        if v < -vtop or v > vtop - 1:
            counts[C_POTENTIAL] += 1
            v = saturate(v, -vtop, vtop - 1)
        pos = saturate(v + span, 0, 2 * span - 1)
        if interp:
            j = pos >> sub
            tt = pos - (j << sub)
            s = lut[j] + hu_i((lut[j + 1] - lut[j]) * tt, sub)
        else:
            s = lut[hu_i(pos, sub)]
        s1 = (np.int64(1) << fs) - s
        e = (np.int64(yt[m]) << fe) - hu_i(s * kc[KC_PHIDT_MANT], fs + kc[KC_PHIDT_SH] - fe)
        h = hu_i(hu_i(s * s1, fs) * s1, fs)
        hb = st.hbar[b, m] + hu_i(word_i((h << (fh - fs)) - st.hbar[b, m], wlo, whi, counts),
                                   kc[KC_H_TAU_SHIFT])
        st.hbar[b, m] = hb
        if k % kc[KC_GAMMA_EVERY] == 0:
            # neuron._gamma_from_hbar: 1 / hbar ~ y 2**-(W-2+ex), times 1/(phi_max beta^2)
            y, ex = recip_word_jit(hb, wb, rtab)
            q = y * kc[KC_GINV_MANT]
            gs = kc[KC_GINV_SH] + (wb - 2) + ex - fg - fh
            if hb <= 0:
                g = gtop
                gsat = True
            elif gs > 0:
                g = hu_i(q, gs)
                gsat = g > gtop
            else:
                gsat = q > (gtop >> min(-gs, 62))
                g = gtop if gsat else q << (-gs)
            if gsat:
                counts[C_GAMMA] += 1
                g = gtop
            st.gamma[b, m] = g
            ext_i(st.ext, b, EX_GAMMA, g)      # gamma_s changes only here (k = 0 included)
        gam = st.gamma[b, m] if use_gamma else np.int64(1) << fg
        g1 = word_i(hu_i(gam * s1, fs), np.int64(0), uhi, counts)
        ek = word_i(shr_i((e if e >= 0 else -e) * kc[KC_K_MANT], fe + kc[KC_K_SH] - ekf),
                     wlo, whi, counts)
        a = word_i(shr_i(g1 * ek, fg + ekf - fp), wlo, whi, counts)
        amount = word_i((a if e > 0 else -a) + st.carry[b, m], wlo, whi, counts)
        mag = amount if amount >= 0 else -amount
        idx = tb | m
        r = np.int64(random_bits_from_prefix(pe, idx) >> np.uint64(64 - fp))
        if graded:
            # post_levels: a level 0..levels, the excess beyond the top carried
            if last:
                ratio = kc[KC_UNIT_RATIO] if amount > 0 else np.int64(1)
                unit = ratio << fp
                nlev = np.int64(0)
                for jl in range(1, n_levels + 1):        # compares, no division
                    if mag >= jl * unit:
                        nlev += 1
                rem = mag - nlev * unit
                if nlev >= n_levels:
                    lev = n_levels
                    left = rem if amount > 0 else -rem
                else:
                    lev = nlev + (1 if r * ratio < rem else 0)
                    left = np.int64(0)
            else:
                lev = np.int64(0)
                left = amount
            bp = 1 if (lev > 0 and amount > 0) else 0
            coded = (lev * kc[KC_UNIT_RATIO] if amount > 0 else -lev) << fp
            bap[m] = bp
            y1v[m] = lev * kc[KC_Y_UNIT]
            y2v[m] = kc[KC_Y2_CONST]
            st.events[b, m, 0] += lev if bp else 0
            st.events[b, m, 1] += 0 if bp else lev
            vmul = lev
            p = mag
        else:
            over = mag > one
            ev = over or r < mag
            left = (amount - one if amount > 0 else amount + one) if over else np.int64(0)
            p = one if over else mag
            coded = (one if amount > 0 else -one) if ev else np.int64(0)
            # events -> bap / y1 / y2 (neuron.send_events)
            if ev and amount > 0:
                pend[b, m, 0] += 1
            if ev and amount < 0:
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
            st.events[b, m, 0] += (1 if go_p else 0) if all_y0 else bp
            st.events[b, m, 1] += 1 if go_n else 0
            vmul = np.int64(1)
        if not use_gamma:
            vmul = np.int64(0)       # euclid: no heterosynaptic term, y3 stays at 64
        if left != 0 and (last or not graded):
            counts[C_POST_CARRY] += 1
        if left < -ctop or left > ctop:
            counts[C_CARRY] += 1
            left = saturate(left, -ctop, ctop)
        st.carry[b, m] = left
        low = np.int64(random_bits_from_prefix(pv, idx) & vqmask)
        vq = (vmul * v * kc[KC_VQ_MANT] + low) >> vqsh
        if vq < -yo or vq > yo - 1:
            counts[C_VQ] += 1
            vq = saturate(vq, -yo, yo - 1)
        y3v[m] = vq + yo
        st.vlast[b, m] = v
        st.slast[b, m] = s
        st.elast[b, m] = e
        st.plast[b, m] = p
        post = a if e > 0 else -a
        st.nlast[0, b, m] = post
        st.nlast[1, b, m] = amount
        st.nlast[2, b, m] = coded
        st.nlast[3, b, m] = vq
        ext = st.ext
        ext_i(ext, b, EX_V, v)
        ext_i(ext, b, EX_VQ, vq)
        ext_i(ext, b, EX_SIGMA, s)
        ext_i(ext, b, EX_ERROR, e)
        ext_i(ext, b, EX_POST, post)
        ext_i(ext, b, EX_AMOUNT, amount)
        ext_i(ext, b, EX_CODED, coded)
        ext_i(ext, b, EX_CARRY, left)
    # ---- Dense: a_buff for the next step (pre-learning weights)
    for m in range(M):
        acc = np.int64(0)
        for i in range(N):
            if spk[i]:
                acc += W[b, m, i]
        st.a_buff[b, m] = acc << kc[KC_WEXP]
    # ---- spiking phase of LearningDense: spike times, second-spike impulses, y
    xtr = st.xtr
    tx = st.tx
    ty = st.ty
    spiked = sc.spiked
    n_spk = 0
    for i in range(N):
        if spk[i]:
            if tx[b, i] > 0:
                for jj in range(2):
                    st.scounts[S_TRACE] += 1 if xtr[b, jj, i] + kc[KC_KX] > tmax else 0
                    xtr[b, jj, i] = saturate(xtr[b, jj, i] + kc[KC_KX], 0, tmax)
            tx[b, i] = ts
            spiked[n_spk] = i
            n_spk += 1
    for m in range(M):
        if bap[m]:
            ty[b, m] = ts
        st.yr[b, 0, m] = y1v[m]
        st.yr[b, 1, m] = y2v[m]
        st.yr[b, 2, m] = y3v[m]
    if not last:
        for jj in range(2):
            ext_row(st.ext[0], st.ext[1], b, EX_X1 + jj, xtr[b, jj])
        return
    # ---- learning phase: trace histories through the epoch
    for i in range(N):
        for jj in range(2):
            xh[0, jj, i] = xtr[b, jj, i]
    for m in range(M):
        for jj in range(3):
            yh[0, jj, m] = st.yr[b, jj, m]
    for stp in range(1, te + 1):
        kk = k + 1 - te + stp - 1
        px = stream_prefix(seed, STREAM_X_ROUND, kk) if t_per_syn else np.uint64(0)
        py = stream_prefix(seed, STREAM_Y_ROUND, kk) if t_per_syn else np.uint64(0)
        for jj in range(2):
            st.scounts[S_TRACE] += decay_x(xh[stp - 1, jj], xh[stp, jj], tx[b], stp, dec_x[jj], r_x,
                                      t_per_syn, px, tb + jj * N, kc[KC_KX], tmax)
        for m in range(M):
            for jj in range(3):
                if t_per_syn:
                    ryy = unit_i(random_bits_from_prefix(py, tb | (jj * M + m)))
                else:
                    ryy = r_y
                val = dec_y * yh[stp - 1, jj, m]
                fl = np.floor(val)
                yh[stp, jj, m] = np.int64(fl) + (1 if ryy < val - fl else 0)
    if te == 1:                  # extremes: at the impulses and chunk ends (impulse_ext)
        for i in range(N):
            for jj in range(2):
                xtr[b, jj, i] = xh[te, jj, i]
        for jj in range(2):
            impulse_ext(st.ext, b, EX_X1 + jj, xh[0, jj], xtr[b, jj], spiked, n_spk, k > 0)
    else:
        for jj in range(2):
            copy_ext(xh[te, jj], xtr[b, jj], st.ext[0], st.ext[1], b, EX_X1 + jj)
    u = 1 if ((k + 1) // te) % (np.int64(1) << kc[KC_U_K]) == 0 else 0
    pw = stream_prefix(seed, STREAM_W_ROUND, k)
    pd = stream_prefix(seed, STREAM_D_ROUND, k)
    # Lava's shared rounding: r_w < rem / 2**s  <=>  rem > floor(r_w 2**s) (exact: rem integer)
    thr = np.int64(np.floor(r_w * np.float64(np.int64(1) << acc_shift)))
    lo = -(np.int64(1) << acc_bits) - 1
    hi = (np.int64(1) << acc_bits) - 1
    accw, accd, satw, satd, tmp = sc.accw, sc.accd, sc.satw, sc.satd, sc.tmp
    has_d = P > n_dw
    dtag = st.dtag
    scounts = st.scounts
    for m in range(M):
        tym = ty[b, m]
        bapm = 1 if tym > 0 else 0
        vy0[2] = yh[tym, 0, m]
        vy0[3] = yh[tym, 1, m]
        vy0[4] = yh[tym, 2, m]
        vu[2] = yh[te, 0, m]
        vu[3] = yh[te, 1, m]
        vu[4] = yh[te, 2, m]
        n_act = active(ptab, pconst, vy0, vu, bapm, u, trace_bits, act)
        n_act_dw = 0
        while n_act_dw < n_act and act[n_act_dw] < n_dw:
            n_act_dw += 1
        wrow = W[b, m]
        drow = dtag[b, m]
        # every synapse's accumulators, one product at a time over all synapses (vectorized)
        n_out = start_acc(accw, satw, wrow, acc_shift, lo, hi)
        for a in range(n_act_dw):
            add_product(accw, satw, tmp, ptab, pconst, act[a], vy0, vu, tym, te, xh, wrow,
                         tags, drow, lo, hi, trace_bits, syn_bits, acc_shift)
        if has_d:
            n_out += start_acc(accd, satd, drow, acc_shift, lo, hi)
            for a in range(n_act_dw, n_act):
                add_product(accd, satd, tmp, ptab, pconst, act[a], vy0, vu, tym, te, xh,
                             wrow, tags, drow, lo, hi, trace_bits, syn_bits, acc_shift)
        if n_out > 0:
            # accumulators that start outside their range: redo those synapses one by one
            for i in range(N):
                vy0[0] = xh[tym, 0, i]
                vy0[1] = xh[tym, 1, i]
                vu[0] = xh[te, 0, i]
                vu[1] = xh[te, 1, i]
                vy0[5] = wrow[i]
                vu[5] = wrow[i]
                vy0[6] = tags[i]
                vu[6] = tags[i]
                vy0[7] = drow[i]
                vu[7] = drow[i]
                a0 = wrow[i] << acc_shift
                if a0 < lo or a0 > hi:
                    accw[i], satw[i] = apply_all(ptab, pconst, 0, n_dw, a0, vy0, vu, bapm, u,
                                                  trace_bits, syn_bits, acc_bits, acc_shift)
                a0 = drow[i] << acc_shift
                if has_d and (a0 < lo or a0 > hi):
                    accd[i], satd[i] = apply_all(ptab, pconst, n_dw, P, a0, vy0, vu, bapm, u,
                                                  trace_bits, syn_bits, acc_bits, acc_shift)
        # weights (and tag_2) from the accumulators: stochastic rounding and saturation
        n_wsat = np.int64(0)
        n_dsat = np.int64(0)
        n_sat = np.int64(0)
        base = tb + m * N     # tb | (m N + i): the synapse's random-word index
        wmn = st.ext[0, b, EX_W]
        wmx = st.ext[1, b, EX_W]
        for i in range(N):
            qq = round_acc(accw[i], acc_shift, w_per_syn, pw, base + i, thr)
            n_wsat += 1 if (qq < -wtop or qq > wtop - 1) else 0
            wq = saturate(qq, -wtop, wtop - 1)
            wrow[i] = wq
            wmn = min(wmn, wq)
            wmx = max(wmx, wq)
            n_sat += satw[i]
        st.ext[0, b, EX_W] = wmn
        st.ext[1, b, EX_W] = wmx
        if has_d:
            dmn = st.ext[0, b, EX_TAG2]
            dmx = st.ext[1, b, EX_TAG2]
            for i in range(N):
                ad = accd[i]
                n_dsat += 1 if ad < 0 else 0
                qd = round_acc(max(ad, np.int64(0)), acc_shift, w_per_syn, pd, base + i, thr)
                n_dsat += 1 if qd > wtop - 1 else 0
                dq = min(qd, wtop - 1)               # tag_2: unsigned 8 bits (Lava W_TAG_2_U)
                drow[i] = dq
                dmn = min(dmn, dq)
                dmx = max(dmx, dq)
                n_sat += satd[i] & (1 - satw[i])
            st.ext[0, b, EX_TAG2] = dmn
            st.ext[1, b, EX_TAG2] = dmx
        scounts[S_TAG] += n_dsat
        scounts[S_WEIGHT] += n_wsat
        scounts[S_ACC] += n_sat
    for i in range(N):
        tx[b, i] = 0
    for m in range(M):
        ty[b, m] = 0
