"""The fused numba kernel: :func:`neuron_step` + :func:`synapse_step`, element by element.

The same arithmetic as :mod:`.neuron` and :mod:`.lava_replica`, compiled into one loop
over steps, trials, neurons and synapses; it must stay bit-identical to them
(``tests/lava_procs/test_lava_path2.py`` compares the two backends, ``tests/emulator/test_golden.py`` pins the
bits).  Every width and format comes from the design's ``engine`` / ``neuron`` records,
packed by :func:`pack` into the constant array ``kc``.  Lava has no counterpart: its
``LearningDense`` runs in Python (see ``lava/magma/core/learning/learning_rule_applier.py``).

The learning phase runs one product at a time over all synapses of a neuron
(:func:`_add_product`), so the synapse loops vectorize; only the products that can be nonzero
this epoch run (:func:`_active`).  The helpers that hold loops are compiled functions of their
own rather than inlined: both kernels then compile in about two thirds of the time, at the same
speed.  ``_le_step`` stays inlined (passing its state as arguments costs about 13 %).
"""
from __future__ import annotations

import collections

import numpy as np
from numba import njit

from fixedpoint.jit import (HALF_UP, random_bits_from_prefix, recip_word_jit, saturate,
                            shift_right, stream_prefix)
from fixedpoint.recip import recip_table

from emulator.spikes import spike_prefixes, spikes_step

from .extremes import (EX_AMOUNT, EX_CARRY, EX_CODED, EX_ERROR, EX_GAMMA, EX_POST, EX_SIGMA, EX_TAG2,
                       EX_V, EX_VQ, EX_W, EX_X1)
from .constants import (A_OUT_BITS, STREAM_D_ROUND, STREAM_EVENT, STREAM_VQ, STREAM_W_ROUND,
                        STREAM_X_ROUND, STREAM_Y_ROUND)
from .kernel_layout import (C_CARRY, C_GAMMA, C_INPUT, C_POST_CARRY, C_POTENTIAL, C_VQ, C_WORD,
                            KC_ACC_BITS, KC_ACC_SHIFT, KC_ALL_Y0, KC_CARRY_BITS, KC_DM, KC_DS,
                            KC_EK_FRAC, KC_F_A, KC_F_D, KC_F_E, KC_F_G, KC_F_H, KC_F_P, KC_F_S,
                            KC_F_V, KC_GAMMA_EVERY, KC_GINV_MANT, KC_GINV_SH, KC_GRADED, KC_G_BITS,
                            KC_H_TAU_SHIFT, KC_KX, KC_K_MANT, KC_K_SH, KC_LEVELS, KC_NAMES, KC_N_DW,
                            KC_PHIDT_MANT, KC_PHIDT_SH, KC_SIG_INTERP, KC_SIG_NODE_FRAC,
                            KC_SIG_SPAN, KC_SYN_BITS, KC_TRACE_BITS, KC_T_EPOCH, KC_T_PER_SYN,
                            KC_UNIT_RATIO, KC_USE_GAMMA, KC_U_K, KC_VK_MANT, KC_VK_SH, KC_VQ_MANT,
                            KC_VQ_SH, KC_V_BITS, KC_WEXP, KC_WORD_BITS, KC_W_PER_SYN, KC_Y2_CONST,
                            KC_Y_EVENT, KC_Y_OFFSET, KC_Y_UNIT, N_KC, S_ACC, S_TAG, S_TRACE,
                            S_WEIGHT, VAR_CODE)
from .rule_design import Design, u_exponent

_R0 = np.uint64(0)    #: random word for deterministic rounding modes (ignored)


def pack(d: Design, products):
    """The design's integers, formats and the product tables, as arrays for :func:`run_chunk`.

    Returns
    -------
    kc : (N_KC,) int64
        Constants, indexed by ``KC_*`` (design integers, ``d.neuron``, ``d.engine``).
    ptab : (P, 8) int64
        Per product (the dw products, then the dd products): dependency (1 = y0, 0 = u),
        mantissa, exponent, right shift, number of factors, then the factors' variable codes
        (``VAR_CODE``).
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
        PHIDT_SH=d.phidt_shift, GINV_MANT=d.ginv_mant, GINV_SH=d.ginv_shift,
        K_MANT=d.k_mant, K_SH=d.k_shift, EK_FRAC=d.ek_frac, VQ_MANT=d.vq_mant,
        VQ_SH=d.vq_shift, KX=d.k_x, WEXP=d.weight_exp, WORD_BITS=nf.word_bits,
        F_A=nf.filter_frac, F_D=nf.decay_frac, F_V=nf.v_frac, V_BITS=nf.v_bits,
        F_S=nf.sigma_frac, SIG_SPAN=nf.sigma_span_mv, SIG_NODE_FRAC=nf.sigma_node_frac,
        SIG_INTERP=int(bool(nf.sigma_interpolate)), F_E=nf.error_frac, F_H=nf.hbar_frac,
        H_TAU_SHIFT=nf.hbar_tau_shift, GAMMA_EVERY=nf.gamma_every, F_G=nf.gamma_frac,
        G_BITS=nf.gamma_bits, F_P=nf.prob_frac, Y_EVENT=d.y_event, Y_OFFSET=d.y_offset,
        TRACE_BITS=e.trace_bits, SYN_BITS=e.synaptic_bits, ACC_BITS=e.accumulator_bits,
        ACC_SHIFT=e.acc_shift, T_EPOCH=e.t_epoch,
        W_PER_SYN=int(e.weight_rounding == "per_synapse"),
        T_PER_SYN=int(e.trace_rounding == "per_synapse"), ALL_Y0=int(bool(d.all_y0)),
        U_K=ks.pop() if ks else 0, N_DW=len(products), Y2_CONST=d.y2_const,
        GRADED=int(d.encoding == "graded"), LEVELS=d.levels, UNIT_RATIO=d.unit_ratio,
        Y_UNIT=d.y_unit, USE_GAMMA=int(d.mapped_rule == "approx"), CARRY_BITS=nf.carry_bits)
    kc = np.array([vals.pop(n) for n in KC_NAMES], np.int64)
    if vals:
        raise ValueError(f"not in the kc layout (kernel_layout.KC_NAMES): {sorted(vals)}")
    ptab = np.zeros((len(allp), 8), np.int64)    # dep (1 = y0), mant, exp, shift, nf, vars
    pconst = np.zeros((len(allp), 3), np.int64)
    for j, pr in enumerate(allp):
        if len(pr.factors) > 3 or pr.dep == "x0":
            raise ValueError("the numba kernel supports u/y0 products of <= 3 factors")
        ptab[j, :5] = (1 if pr.dep == "y0" else 0, pr.mant, pr.exp, pr.shift, len(pr.factors))
        for f, (var, const) in enumerate(pr.factors):
            ptab[j, 5 + f] = VAR_CODE[var]
            pconst[j, f] = const
    return kc, ptab, pconst


@njit(cache=True, inline="always")
def _hu_i(x, s):
    """Round half up of ``x / 2**s``: :func:`fixedpoint.jit.shift_right` in mode HALF_UP.

    Scalar twin of :func:`emulator.learning.neuron._hu` (same bits; see there).
    """
    return shift_right(x, s, HALF_UP, _R0)


@njit(cache=True, inline="always")
def _shr_i(x, s):
    """Scalar twin of :func:`emulator.learning.neuron._shr`."""
    return shift_right(x, s, HALF_UP, _R0) if s > 0 else x << (-s)


@njit(cache=True, inline="always")
def _word_i(x, lo, hi, counts):
    """Scalar twin of :func:`emulator.learning.neuron._word` (bounds given)."""
    if x < lo or x > hi:
        counts[C_WORD] += 1
        return saturate(x, lo, hi)
    return x


@njit(cache=True, inline="always")
def _ext_i(ext, b, col, x):
    """Fold value ``x`` into the running extremes ``ext[0, b, col]`` (min), ``ext[1, b, col]``
    (max)."""
    if x < ext[0, b, col]:
        ext[0, b, col] = x
    if x > ext[1, b, col]:
        ext[1, b, col] = x


@njit(cache=True)
def _copy_ext(src, dst, lo, hi, b, col):
    """``dst[:] = src``, folding every value into ``lo[b, col]``, ``hi[b, col]``."""
    mn = lo[b, col]
    mx = hi[b, col]
    for i in range(src.shape[0]):
        v = src[i]
        dst[i] = v
        mn = min(mn, v)
        mx = max(mx, v)
    lo[b, col] = mn
    hi[b, col] = mx


@njit(cache=True)
def _ext_row(lo, hi, b, col, row):
    """Fold every value of ``row`` into ``lo[b, col]``, ``hi[b, col]``."""
    mn = lo[b, col]
    mx = hi[b, col]
    for i in range(row.shape[0]):
        mn = min(mn, row[i])
        mx = max(mx, row[i])
    lo[b, col] = mn
    hi[b, col] = mx


@njit(cache=True, inline="always")
def _unit_i(word):
    """uint64 word -> float64 in [0, 1): :func:`emulator.learning.lava_replica._unit`."""
    return np.float64(word >> np.uint64(11)) * 2.0 ** -53


@njit(cache=True)
def _active(ptab, pconst, vy0, vu, bapm, u, trace_bits, act):
    """List in ``act`` the products that can be nonzero for this neuron and epoch, and return
    how many (``act[:n]``; the dw products, below ``KC_N_DW``, come first).  A product is
    skipped when its dependency is off (no bap for y0, no u tick) or a neuron-side factor
    (y1, y2, y3) is 0.  Skipping is exact while the accumulator is in range (adding 0 then
    changes nothing); :func:`_apply_all` handles the other case."""
    n = 0
    for q in range(ptab.shape[0]):
        if ptab[q, 0] == 1:
            on = bapm != 0
            vals = vy0
        else:
            on = u != 0
            vals = vu
        if on:
            for f in range(ptab[q, 4]):
                var = ptab[q, 5 + f]
                if 2 <= var <= 4 and saturate(vals[var] + pconst[q, f],
                                              -(np.int64(1) << trace_bits),
                                              (np.int64(1) << trace_bits) - 1) == 0:
                    on = False
        if on:
            act[n] = q
            n += 1
    return n


@njit(cache=True)
def _product(ptab, pconst, q, vals, acc, lo, hi, trace_bits, syn_bits, acc_shift):
    """``acc`` plus product ``q`` of the factor values ``vals``, clipped (Lava's applier);
    returns (acc, 1 if the clip changed it else 0)."""
    cur = np.int64(1)
    for f in range(ptab[q, 4]):
        var = ptab[q, 5 + f]
        wd = trace_bits if var <= 4 else syn_bits
        cur *= saturate(vals[var] + pconst[q, f], -(np.int64(1) << wd), (np.int64(1) << wd) - 1)
    cur = ((cur * ptab[q, 1]) >> ptab[q, 3]) << (ptab[q, 2] + acc_shift)
    new = saturate(acc + saturate(cur, lo, hi), lo, hi)
    return new, 1 if new != acc + cur else 0


@njit(cache=True)
def _apply_all(ptab, pconst, q0, q1, acc, vy0, vu, bapm, u, trace_bits, syn_bits, acc_bits,
               acc_shift):
    """Products ``q0 .. q1 - 1`` added to ``acc`` one after the other, zero or not (Lava's
    fixed-point applier, one synapse); returns (acc, 1 if a clip changed it else 0).

    For an accumulator that starts outside its range (a tag accumulator ``d << acc_shift``
    with ``d`` up to 2**syn_bits - 1): Lava's applier clips it after every product, zero or
    not and whatever its dependency, so the products that :func:`_add_product` skips must
    run here.
    """
    lo = -(np.int64(1) << acc_bits) - 1
    hi = (np.int64(1) << acc_bits) - 1
    sat = 0
    for q in range(q0, q1):
        if ptab[q, 0] == 1:
            on = bapm != 0
            vals = vy0
        else:
            on = u != 0
            vals = vu
        if not on:
            # the applier still adds this product (as 0) and clips the sum
            new = saturate(acc, lo, hi)
            sat |= 1 if new != acc else 0
            acc = new
            continue
        acc, s = _product(ptab, pconst, q, vals, acc, lo, hi, trace_bits, syn_bits, acc_shift)
        sat |= s
    return acc, sat


#: The engine state the kernels update in place: :class:`.lava_replica.SynapseState` (``W``
#: ... ``scounts``) and :class:`.neuron.NeuronState` (``a_m`` ... ``sent``), in their formats;
#: ``events`` (B, M, 2) counts the positive / negative events sent.  ``counts`` and
#: ``scounts`` are totals over the trials (a parallel run gives each block its own).
#: ``nlast`` (4, B, M) holds the neuron's ``post``, ``amount``, ``coded`` and ``vq`` (rows
#: :data:`NLAST_ROWS`); ``ext`` (2, B, N_EXTREMES) the running minima and maxima of
#: :mod:`.extremes` (integer codes).  Both have the trials on axis 1.
LEKernelState = collections.namedtuple(
    "LEKernelState", ("W", "xtr", "a_buff", "tx", "ty", "yr", "dtag", "scounts", "a_m", "a_s",
                      "hbar", "gamma", "vlast", "slast", "elast", "plast", "counts", "pend",
                      "sent", "carry", "events", "nlast", "ext"))
#: rows of ``LEKernelState.nlast``: the :class:`.neuron.NeuronState` fields they are
NLAST_ROWS = ("post", "amount", "coded", "vq")
#: The design as the kernels read it: :func:`pack`'s arrays, the sigmoid table, the tags and
#: ``exp(-1/tau)`` of the x traces (2,) and of the y traces (scalar).
LEKernelConst = collections.namedtuple(
    "LEKernelConst", ("kc", "lut", "ptab", "pconst", "tags", "dec_x", "dec_y", "rtab"))
#: Per-thread scratch of one trial step; ``act`` (P,) lists the products :func:`_active`,
#: ``spiked`` (N,) the afferents that spiked (one-step epochs: the traces' extremes).
LEScratch = collections.namedtuple(
    "LEScratch", ("bap", "y1v", "y2v", "y3v", "xh", "yh", "vy0", "vu", "act", "accw", "accd",
                  "satw", "satd", "tmp", "spiked"))


@njit(cache=True, inline="always")
def _le_step(k, b, spk, yt, r_x, r_y, r_w, pe, pv, seed, trial, c, st, sc):
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
        am = _word_i(_hu_i(st.a_m[b, m] * kc[KC_DM], fd) + (a_in << fa), wlo, whi, counts)
        as_ = _word_i(_hu_i(st.a_s[b, m] * kc[KC_DS], fd) + (a_in << fa), wlo, whi, counts)
        st.a_m[b, m] = am
        st.a_s[b, m] = as_
        diff = _word_i(_hu_i(am * kc[KC_DM] - as_ * kc[KC_DS], fd), wlo, whi, counts)
        v = _hu_i(diff * kc[KC_VK_MANT], fa + kc[KC_VK_SH] - fv)
        if v < -vtop or v > vtop - 1:
            counts[C_POTENTIAL] += 1
            v = saturate(v, -vtop, vtop - 1)
        pos = saturate(v + span, 0, 2 * span - 1)
        if interp:
            j = pos >> sub
            tt = pos - (j << sub)
            s = lut[j] + _hu_i((lut[j + 1] - lut[j]) * tt, sub)
        else:
            s = lut[_hu_i(pos, sub)]
        s1 = (np.int64(1) << fs) - s
        e = (np.int64(yt[m]) << fe) - _hu_i(s * kc[KC_PHIDT_MANT], fs + kc[KC_PHIDT_SH] - fe)
        h = _hu_i(_hu_i(s * s1, fs) * s1, fs)
        hb = st.hbar[b, m] + _hu_i(_word_i((h << (fh - fs)) - st.hbar[b, m], wlo, whi, counts),
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
                g = _hu_i(q, gs)
                gsat = g > gtop
            else:
                gsat = q > (gtop >> min(-gs, 62))
                g = gtop if gsat else q << (-gs)
            if gsat:
                counts[C_GAMMA] += 1
                g = gtop
            st.gamma[b, m] = g
            _ext_i(st.ext, b, EX_GAMMA, g)      # gamma_s changes only here (k = 0 included)
        gam = st.gamma[b, m] if use_gamma else np.int64(1) << fg
        g1 = _word_i(_hu_i(gam * s1, fs), np.int64(0), uhi, counts)
        ek = _word_i(_shr_i((e if e >= 0 else -e) * kc[KC_K_MANT], fe + kc[KC_K_SH] - ekf),
                     wlo, whi, counts)
        a = _word_i(_shr_i(g1 * ek, fg + ekf - fp), wlo, whi, counts)
        amount = _word_i((a if e > 0 else -a) + st.carry[b, m], wlo, whi, counts)
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
        _ext_i(ext, b, EX_V, v)
        _ext_i(ext, b, EX_VQ, vq)
        _ext_i(ext, b, EX_SIGMA, s)
        _ext_i(ext, b, EX_ERROR, e)
        _ext_i(ext, b, EX_POST, post)
        _ext_i(ext, b, EX_AMOUNT, amount)
        _ext_i(ext, b, EX_CODED, coded)
        _ext_i(ext, b, EX_CARRY, left)
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
            _ext_row(st.ext[0], st.ext[1], b, EX_X1 + jj, xtr[b, jj])
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
            st.scounts[S_TRACE] += _decay_x(xh[stp - 1, jj], xh[stp, jj], tx[b], stp, dec_x[jj], r_x,
                                      t_per_syn, px, tb + jj * N, kc[KC_KX], tmax)
        for m in range(M):
            for jj in range(3):
                if t_per_syn:
                    ryy = _unit_i(random_bits_from_prefix(py, tb | (jj * M + m)))
                else:
                    ryy = r_y
                val = dec_y * yh[stp - 1, jj, m]
                fl = np.floor(val)
                yh[stp, jj, m] = np.int64(fl) + (1 if ryy < val - fl else 0)
    if te == 1:                  # extremes: at the impulses and chunk ends (_impulse_ext)
        for i in range(N):
            for jj in range(2):
                xtr[b, jj, i] = xh[te, jj, i]
        for jj in range(2):
            _impulse_ext(st.ext, b, EX_X1 + jj, xh[0, jj], xtr[b, jj], spiked, n_spk, k > 0)
    else:
        for jj in range(2):
            _copy_ext(xh[te, jj], xtr[b, jj], st.ext[0], st.ext[1], b, EX_X1 + jj)
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
        n_act = _active(ptab, pconst, vy0, vu, bapm, u, trace_bits, act)
        n_act_dw = 0
        while n_act_dw < n_act and act[n_act_dw] < n_dw:
            n_act_dw += 1
        wrow = W[b, m]
        drow = dtag[b, m]
        # every synapse's accumulators, one product at a time over all synapses (vectorized)
        n_out = _start_acc(accw, satw, wrow, acc_shift, lo, hi)
        for a in range(n_act_dw):
            _add_product(accw, satw, tmp, ptab, pconst, act[a], vy0, vu, tym, te, xh, wrow,
                         tags, drow, lo, hi, trace_bits, syn_bits, acc_shift)
        if has_d:
            n_out += _start_acc(accd, satd, drow, acc_shift, lo, hi)
            for a in range(n_act_dw, n_act):
                _add_product(accd, satd, tmp, ptab, pconst, act[a], vy0, vu, tym, te, xh,
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
                    accw[i], satw[i] = _apply_all(ptab, pconst, 0, n_dw, a0, vy0, vu, bapm, u,
                                                  trace_bits, syn_bits, acc_bits, acc_shift)
                a0 = drow[i] << acc_shift
                if has_d and (a0 < lo or a0 > hi):
                    accd[i], satd[i] = _apply_all(ptab, pconst, n_dw, P, a0, vy0, vu, bapm, u,
                                                  trace_bits, syn_bits, acc_bits, acc_shift)
        # weights (and tag_2) from the accumulators: stochastic rounding and saturation
        n_wsat = np.int64(0)
        n_dsat = np.int64(0)
        n_sat = np.int64(0)
        base = tb + m * N     # tb | (m N + i): the synapse's random-word index
        wmn = st.ext[0, b, EX_W]
        wmx = st.ext[1, b, EX_W]
        for i in range(N):
            qq = _round_acc(accw[i], acc_shift, w_per_syn, pw, base + i, thr)
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
                qd = _round_acc(max(ad, np.int64(0)), acc_shift, w_per_syn, pd, base + i, thr)
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


@njit(cache=True)
def _decay_x(prev, out, txb, stp, dec, r_x, per_syn, px, idx0, kx, tmax):
    """One step of an x trace over the afferents: ``floor(dec x) + (r < frac)`` with Lava's
    shared number ``r_x`` or a word of stream ``px`` per afferent (index ``idx0 + i``), then
    the impulse ``kx`` where the afferent spiked at epoch step ``stp`` (clipped to ``tmax``).
    Returns how many impulses the clip cut."""
    n_sat = 0
    for i in range(prev.shape[0]):
        if per_syn:
            r = _unit_i(random_bits_from_prefix(px, idx0 + i))
        else:
            r = r_x
        val = dec * prev[i]
        fl = np.floor(val)
        nv = np.int64(fl) + (1 if r < val - fl else 0)
        if txb[i] == stp:
            n_sat += 1 if nv + kx > tmax else 0
            out[i] = min(nv + kx, tmax)
        else:
            out[i] = nv
    return n_sat


@njit(cache=True)
def _impulse_ext(ext, b, col, before, after, spiked, n_spk, with_before):
    """Fold into ``ext[:, b, col]`` the traces ``after`` (stored after this one-step epoch) of
    the ``n_spk`` afferents ``spiked[:n_spk]`` that received an impulse, and (``with_before``:
    not the run's first step) their values ``before`` (stored the step before).  A decay never
    raises a trace nor takes it below 0, so each afferent's largest value follows an impulse
    and its smallest precedes one or ends the run: with the traces at the end of every chunk
    (:func:`_traces_ext`) these are the extremes over every step, at a cost per spike only."""
    mn = ext[0, b, col]
    mx = ext[1, b, col]
    for q in range(n_spk):
        i = spiked[q]
        v = after[i]
        mn = min(mn, v)
        mx = max(mx, v)
        if with_before:
            mn = min(mn, before[i])
    ext[0, b, col] = mn
    ext[1, b, col] = mx


@njit(cache=True)
def _start_acc(acc, satf, row, acc_shift, lo, hi):
    """``acc = row << acc_shift``, no clip yet; returns how many start outside [lo, hi]."""
    n_out = np.int64(0)
    for i in range(row.shape[0]):
        a = row[i] << acc_shift
        acc[i] = a
        satf[i] = 0
        n_out += 1 if (a < lo or a > hi) else 0
    return n_out


@njit(cache=True)
def _add_product(acc, satf, tmp, ptab, pconst, q, vy0, vu, tym, te, xh, wrow, tags, drow, lo,
                 hi, trace_bits, syn_bits, acc_shift):
    """Product ``q`` added to every synapse's accumulator (Lava's applier, :func:`_product`
    over the synapses): the neuron-side factors (y1-y3) and the mantissa are one integer, the
    synapse-side ones (x1, x2, w, t, d) are multiplied in by whole rows of ``tmp``.  Integer
    products are exact (``product_bound``), so the factor order does not matter; the floor
    shift comes after the whole product, as in Lava.  ``satf`` ORs in 1 where a clip changed
    the sum."""
    y0dep = ptab[q, 0] == 1
    vals = vy0 if y0dep else vu
    h = tym if y0dep else te
    tlo = -(np.int64(1) << trace_bits)
    thi = (np.int64(1) << trace_bits) - 1
    slo = -(np.int64(1) << syn_bits)
    shi = (np.int64(1) << syn_bits) - 1
    coef = ptab[q, 1]
    n_syn = 0
    for f in range(ptab[q, 4]):
        var = ptab[q, 5 + f]
        c = pconst[q, f]
        if 2 <= var <= 4:
            coef *= saturate(vals[var] + c, tlo, thi)
            continue
        first = n_syn == 0
        n_syn += 1
        if var == 0:
            _mul_row(tmp, xh[h, 0], c, tlo, thi, first)
        elif var == 1:
            _mul_row(tmp, xh[h, 1], c, tlo, thi, first)
        elif var == 5:
            _mul_row(tmp, wrow, c, slo, shi, first)
        elif var == 6:
            _mul_row(tmp, tags, c, slo, shi, first)
        else:
            _mul_row(tmp, drow, c, slo, shi, first)
    sh = ptab[q, 3]
    lsh = ptab[q, 2] + acc_shift
    if n_syn == 0:
        cur = ((coef >> sh) << lsh)
        cc = saturate(cur, lo, hi)
        for i in range(acc.shape[0]):
            a = acc[i]
            new = min(max(a + cc, lo), hi)
            satf[i] |= 1 if new != a + cur else 0
            acc[i] = new
        return
    for i in range(acc.shape[0]):
        cur = ((coef * tmp[i]) >> sh) << lsh
        a = acc[i]
        new = min(max(a + min(max(cur, lo), hi), lo), hi)
        satf[i] |= 1 if new != a + cur else 0
        acc[i] = new


@njit(cache=True)
def _mul_row(tmp, row, c, lo, hi, first):
    """``tmp = clip(row + c)`` (``first``) or ``tmp *= clip(row + c)``, clipped to [lo, hi]."""
    if first:
        for i in range(tmp.shape[0]):
            tmp[i] = min(max(row[i] + c, lo), hi)
    else:
        for i in range(tmp.shape[0]):
            tmp[i] *= min(max(row[i] + c, lo), hi)


@njit(cache=True, inline="always")
def _scratch(c, N, M):
    te = c.kc[KC_T_EPOCH]
    return LEScratch(np.zeros(M, np.int64), np.zeros(M, np.int64), np.zeros(M, np.int64),
                     np.zeros(M, np.int64), np.zeros((te + 1, 2, N), np.int64),
                     np.zeros((te + 1, 3, M), np.int64), np.zeros(8, np.int64),
                     np.zeros(8, np.int64), np.zeros(c.ptab.shape[0], np.int64),
                     np.zeros(N, np.int64), np.zeros(N, np.int64), np.zeros(N, np.int64),
                     np.zeros(N, np.int64), np.zeros(N, np.int64), np.zeros(N, np.int64))


@njit(cache=True, inline="always")
def _round_acc(acc, acc_shift, per_synapse, prefix, sidx, thr):
    """``acc >> acc_shift`` rounded up with probability ``rem / 2**acc_shift``: a random word
    of stream ``prefix`` per synapse, or Lava's one shared number ``r_w`` (as ``thr =
    floor(r_w 2**acc_shift)``: up iff ``rem > thr``)."""
    q = acc >> acc_shift
    rem = acc & ((np.int64(1) << acc_shift) - 1)
    if per_synapse:
        return q + (1 if np.int64(random_bits_from_prefix(prefix, sidx)
                                  >> np.uint64(64 - acc_shift)) < rem else 0)
    return q + (1 if rem > thr else 0)


@njit(cache=True, inline="always")
def _event_prefixes(seed, k0, T):
    pe = np.empty(T, np.uint64)
    pv = np.empty(T, np.uint64)
    for t in range(T):
        pe[t] = stream_prefix(seed, STREAM_EVENT, k0 + t)
        pv[t] = stream_prefix(seed, STREAM_VQ, k0 + t)
    return pe, pv


@njit(cache=True)
def _traces_ext(st, b, n_steps):
    """The traces of trial ``b`` as stored after a chunk of ``n_steps`` steps (if any), folded
    into the running extremes (with those at the impulses, :func:`_impulse_ext`, the extremes
    over every step)."""
    if n_steps > 0:
        for jj in range(2):
            _ext_row(st.ext[0], st.ext[1], b, EX_X1 + jj, st.xtr[b, jj])


def _chunk_impl(c, X, Y, rx, ry, rw, k0, seed, trials, st, rec_every, rec, row0):
    """Steps ``k0 .. k0 + n - 1`` of neuron + LearningDense on ``st``, in place; returns the
    next free row of ``rec``.

    ``X``, ``Y`` (n, B, N) / (n, B, M): input and teacher spikes; ``rx``, ``ry`` (n, B) and
    ``rw`` (n,): Lava's random numbers (:class:`.lava_replica.LavaRandoms`).  After every
    global step k with ``(k + 1) % rec_every == 0`` (0: never) the trial's ``W`` goes to the
    next row of ``rec`` (n_rec, B, M, N), starting at ``row0``.  Trials are independent and
    run one after the other (each in time), so blocks of trials can run on threads.
    """
    n, B, N = X.shape
    M = st.W.shape[1]
    pe, pv = _event_prefixes(seed, k0, n)
    sc = _scratch(c, N, M)
    for b in range(B):
        trial = np.int64(trials[b])
        for t in range(n):
            k = k0 + t
            _le_step(k, b, X[t, b], Y[t, b], rx[t, b], ry[t, b], rw[t], pe[t], pv[t], seed,
                     trial, c, st, sc)
            if rec_every > 0 and (k + 1) % rec_every == 0:
                rec[row0 + (k + 1) // rec_every - k0 // rec_every - 1, b] = st.W[b]
        _traces_ext(st, b, n)
    if rec_every > 0:
        return row0 + (k0 + n) // rec_every - k0 // rec_every
    return row0


def _fused_impl(c, sp, T, rx, ry, rw, k0, seed, trials, st, rec_every, rec, row0, teach):
    """:func:`_chunk_impl` over the next ``T`` steps with the input and teacher spikes drawn
    inside the loop (:func:`emulator.spikes.spikes_step`, bit for bit as
    :class:`emulator.spikes.SpikeSource`; ``sp`` its kernel arguments, traces updated in
    place); no (T, B, N) array exists.  ``teach`` (B, M) accumulates the teacher spikes."""
    B, M, N = st.W.shape
    pe, pv = _event_prefixes(seed, k0, T)
    pin, pteach = spike_prefixes(seed, k0, T)
    sc = _scratch(c, N, M)
    spk = np.zeros(N, np.uint8)
    xf = np.zeros(N, np.float64)
    y = np.zeros(M, np.uint8)
    for b in range(B):
        trial = np.int64(trials[b])
        for t in range(T):
            k = k0 + t
            spikes_step(sp, b, trial << 32, pin[t], pteach[t], spk, xf, y)
            for m in range(M):
                teach[b, m] += y[m]
            _le_step(k, b, spk, y, rx[t, b], ry[t, b], rw[t], pe[t], pv[t], seed, trial, c,
                     st, sc)
            if rec_every > 0 and (k + 1) % rec_every == 0:
                rec[row0 + (k + 1) // rec_every - k0 // rec_every - 1, b] = st.W[b]
        _traces_ext(st, b, T)
    if rec_every > 0:
        return row0 + (k0 + T) // rec_every - k0 // rec_every
    return row0


#: One compiled function each, ``nogil``: a parallel run calls the same code on blocks of
#: trials from several threads (as :mod:`emulator.kernels`), so serial and parallel bits agree
#: by construction and share one cache entry legitimately.
chunk_kernel = njit(cache=True, nogil=True)(_chunk_impl)
fused_kernel = njit(cache=True, nogil=True)(_fused_impl)


def kernel_const(d: Design, products) -> LEKernelConst:
    kc, ptab, pconst = pack(d, products)
    dec_x = np.exp(-1 / np.array([[d.x1_tau], [d.x2_tau]]))[:, 0]
    dec_y = float(np.exp(-1 / np.array([[d.engine.y_tau]]))[0, 0])
    return LEKernelConst(kc, np.asarray(d.sigma_lut, np.int64), ptab, pconst,
                         np.asarray(d.tags, np.int64), dec_x, dec_y,
                         recip_table(d.neuron.word_bits))


def _block(st: LEKernelState, b0: int, b1: int) -> LEKernelState:
    """Trials b0:b1 of ``st`` (views, updated in place) with counters of their own."""
    return LEKernelState(**{f: (np.zeros_like(a) if f in ("counts", "scounts") else
                                a[:, b0:b1] if f in ("nlast", "ext") else a[b0:b1])
                            for f, a in st._asdict().items()})


def run_blocks(st: LEKernelState, rec: np.ndarray, row: int, n_steps: int, k0: int,
               rec_every: int, parallel: bool, call) -> int:
    """Run ``call(block_state, b0, b1, block_rec)`` on contiguous blocks of trials, on
    threads when ``parallel``; sums the blocks' counters into ``st`` and copies their records
    into ``rec`` from ``row``.  Returns the next free row."""
    from emulator.threads import run_threads, trial_blocks
    B = st.W.shape[0]
    blocks = trial_blocks(B, parallel)
    n_rows = (k0 + n_steps) // rec_every - k0 // rec_every if rec_every > 0 else 0
    if len(blocks) == 1:
        return int(call(st, 0, B, rec, row))
    parts = [(_block(st, b0, b1), b0, b1,
              np.empty((n_rows, b1 - b0) + st.W.shape[1:], np.int64)) for b0, b1 in blocks]
    run_threads([lambda p=p: call(p[0], p[1], p[2], p[3], 0) for p in parts])
    for sb, b0, b1, rb in parts:
        st.counts[...] += sb.counts
        st.scounts[...] += sb.scounts
        rec[row:row + n_rows, b0:b1] = rb
    return row + n_rows


def run_chunk(c: LEKernelConst, st: LEKernelState, X, Y, rx, ry, rw, k0, seed, trials,
              rec_every, rec, row, parallel: bool = False) -> int:
    """:func:`chunk_kernel` on blocks of trials (see :func:`run_blocks`)."""
    X = np.ascontiguousarray(X, np.uint8)
    Y = np.ascontiguousarray(Y, np.uint8)

    def call(sb, b0, b1, rb, r0):
        return chunk_kernel(c, np.ascontiguousarray(X[:, b0:b1]),
                            np.ascontiguousarray(Y[:, b0:b1]), np.ascontiguousarray(rx[:, b0:b1]),
                            np.ascontiguousarray(ry[:, b0:b1]), rw, np.int64(k0), np.uint64(seed),
                            trials[b0:b1], sb, np.int64(rec_every), rb, np.int64(r0))
    return run_blocks(st, rec, row, X.shape[0], k0, rec_every, parallel, call)


def run_fused(c: LEKernelConst, st: LEKernelState, sp, n_steps, rx, ry, rw, k0, seed, trials,
              rec_every, rec, row, teach, parallel: bool = False) -> int:
    """:func:`fused_kernel` on blocks of trials; ``sp`` = ``SpikeSource.kernel_args()``."""
    def call(sb, b0, b1, rb, r0):
        spb = sp._replace(fw=sp.fw[b0:b1], am=sp.am[b0:b1], as_=sp.as_[b0:b1])
        return fused_kernel(c, spb, np.int64(n_steps), np.ascontiguousarray(rx[:, b0:b1]),
                            np.ascontiguousarray(ry[:, b0:b1]), rw, np.int64(k0),
                            np.uint64(seed), trials[b0:b1], sb, np.int64(rec_every), rb,
                            np.int64(r0), teach[b0:b1])
    return run_blocks(st, rec, row, n_steps, k0, rec_every, parallel, call)
