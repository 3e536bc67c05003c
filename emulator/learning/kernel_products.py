"""The learning phase's arithmetic in the learning-engine kernel (:mod:`.kernel`): the
x traces decayed through an epoch, the sum of products (Lava's ``LearningDense``
microcode, one product at a time over all synapses of a neuron, so the synapse loops
vectorize; only the products that can be nonzero this epoch run) and the accumulators'
stochastic rounding.  The scalar twin of :func:`.lava_replica.synapse_step`'s learning
phase (same bits).  Called from :func:`.kernel_step.le_step`.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from fixedpoint.jit import random_bits_from_prefix, saturate

from .kernel_ops import unit_i


@njit(cache=True)
def decay_x(prev, out, txb, stp, dec, r_x, per_syn, px, idx0, kx, tmax):
    """One step of an x trace over the afferents: ``floor(dec x) + (r < frac)`` with Lava's
    shared number ``r_x`` or a word of stream ``px`` per afferent (index ``idx0 + i``), then
    the impulse ``kx`` where the afferent spiked at epoch step ``stp`` (clipped to ``tmax``).
    Returns how many impulses the clip cut."""
    n_sat = 0
    for i in range(prev.shape[0]):
        if per_syn:
            r = unit_i(random_bits_from_prefix(px, idx0 + i))
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
def active(ptab, pconst, vy0, vu, bapm, u, trace_bits, act):
    """List in ``act`` the products that can be nonzero for this neuron and epoch, and return
    how many (``act[:n]``; the dw products, below ``KC_N_DW``, come first).  A product is
    skipped when its dependency is off (no bap for y0, no u tick) or a neuron-side factor
    (y1, y2, y3) is 0.  Skipping is exact while the accumulator is in range (adding 0 then
    changes nothing); :func:`apply_all` handles the other case."""
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
def product(ptab, pconst, q, vals, acc, lo, hi, trace_bits, syn_bits, acc_shift):
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
def apply_all(ptab, pconst, q0, q1, acc, vy0, vu, bapm, u, trace_bits, syn_bits, acc_bits,
               acc_shift):
    """Products ``q0 .. q1 - 1`` added to ``acc`` one after the other, zero or not (Lava's
    fixed-point applier, one synapse); returns (acc, 1 if a clip changed it else 0).

    For an accumulator that starts outside its range (a tag accumulator ``d << acc_shift``
    with ``d`` up to 2**syn_bits - 1): Lava's applier clips it after every product, zero or
    not and whatever its dependency, so the products that :func:`add_product` skips must
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
        acc, s = product(ptab, pconst, q, vals, acc, lo, hi, trace_bits, syn_bits, acc_shift)
        sat |= s
    return acc, sat


@njit(cache=True)
def start_acc(acc, satf, row, acc_shift, lo, hi):
    """``acc = row << acc_shift``, no clip yet; returns how many start outside [lo, hi]."""
    n_out = np.int64(0)
    for i in range(row.shape[0]):
        a = row[i] << acc_shift
        acc[i] = a
        satf[i] = 0
        n_out += 1 if (a < lo or a > hi) else 0
    return n_out


@njit(cache=True)
def add_product(acc, satf, tmp, ptab, pconst, q, vy0, vu, tym, te, xh, wrow, tags, drow, lo,
                 hi, trace_bits, syn_bits, acc_shift):
    """Product ``q`` added to every synapse's accumulator (Lava's applier, :func:`product`
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
            mul_row(tmp, xh[h, 0], c, tlo, thi, first)
        elif var == 1:
            mul_row(tmp, xh[h, 1], c, tlo, thi, first)
        elif var == 5:
            mul_row(tmp, wrow, c, slo, shi, first)
        elif var == 6:
            mul_row(tmp, tags, c, slo, shi, first)
        else:
            mul_row(tmp, drow, c, slo, shi, first)
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
def mul_row(tmp, row, c, lo, hi, first):
    """``tmp = clip(row + c)`` (``first``) or ``tmp *= clip(row + c)``, clipped to [lo, hi]."""
    if first:
        for i in range(tmp.shape[0]):
            tmp[i] = min(max(row[i] + c, lo), hi)
    else:
        for i in range(tmp.shape[0]):
            tmp[i] *= min(max(row[i] + c, lo), hi)


@njit(cache=True, inline="always")
def round_acc(acc, acc_shift, per_synapse, prefix, sidx, thr):
    """``acc >> acc_shift`` rounded up with probability ``rem / 2**acc_shift``: a random word
    of stream ``prefix`` per synapse, or Lava's one shared number ``r_w`` (as ``thr =
    floor(r_w 2**acc_shift)``: up iff ``rem > thr``)."""
    q = acc >> acc_shift
    rem = acc & ((np.int64(1) << acc_shift) - 1)
    if per_synapse:
        return q + (1 if np.int64(random_bits_from_prefix(prefix, sidx)
                                  >> np.uint64(64 - acc_shift)) < rem else 0)
    return q + (1 if rem > thr else 0)
