"""Replica of Lava's ``LearningDense`` fixed-point model (no Lava imported).

What ``PyLearningDenseModelBitApproximate`` does each time step after sending ``a_out``,
re-implemented independently: the Dense one-step delay, the received third factors decayed
once, the presynaptic traces (decay with a shared random number, impulse, clip to 7 bits),
the products of the rule added to the accumulator ``w << 7``, and the stochastic rounding
back to the weight grid; :class:`LavaRandoms` draws from the same numpy generators, in the
same order, as Lava.  Lava's counterparts: ``lava/magma/core/learning/
learning_rule_applier.py`` (the products), ``lava/magma/core/learning/random.py`` (the
random streams), ``lava/magma/core/model/py/connection.py`` (traces, accumulator, weights).

LearningDense replica (``t_epoch = 1``, one trial ``b``; Lava time step ``k + 1`` is
global step ``k``)
----------------------------------------------------------------------------------------
1. ``a_out(k) = a_buff(k-1)``; ``a_buff(k) = W(k) . X(k)`` (the Dense one-step delay).
2. the neuron reads ``a_out(k)`` and the teacher spike ``y(k)``, sends bap, y1, y2, y3.
3. received y are decayed once: ``floor(d_y y) + (r_y < frac)``, ``d_y = exp(-1/65535)``.
4. traces: ``x <- floor(d x) + (r_x < frac(d x))`` then ``+ K_x`` for this step's spikes,
   clipped to 127 (``d = exp(-1/tau)``, one ``r_x`` for all synapses and both traces).
5. ``acc = W << 7``; each product: factors clipped to their widths, multiplied, times the
   mantissa, floor-shifted right by ``max(0, sum(widths) + 4 - 15)``, shifted left by
   ``exp + 7``, clipped to [-32769, 32767]; ``acc`` accumulates with the same clip.
6. ``W <- floor(acc / 128) + (r_w < frac(acc / 128))``, clipped to [-256, 255].

Random numbers (from ``lava/magma/core/learning/random.py`` and ``connection.py``):
``r_x`` is draw ``2 (k+1)`` of ``numpy.random.default_rng(rng_seed).random`` (one draw at
construction, two ``advance()`` per time step in ``recv_traces``), ``r_y`` the same draw of
``default_rng(rng_seed + 2)``, ``r_w`` draw ``k + 1`` of ``default_rng(2)`` (fixed seed;
one ``advance()`` per learning epoch).  Impulses are integers, so the impulse generators
(``rng_seed + 1``, ``+ 3``) never matter.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from fixedpoint import rng

from .constants import (D_OFFSET, STREAM_D_ROUND, STREAM_W_ROUND, STREAM_X_ROUND,
                        STREAM_Y_ROUND)
from .rule_design import Design, u_exponent, var_width


def lava_trace_seed(seed: int, trial: int) -> int:
    """``rng_seed`` of trial ``trial``'s Loihi3FLearningRule (Lava also uses +1, +2, +3)."""
    return int((int(seed) * 1_000_003 + 4 * int(trial) + 1) % (2 ** 31 - 8))


class LavaRandoms:
    """The three numpy generators LearningDense's fixed_pt model draws from, per trial."""

    def __init__(self, rng_seeds, sr_seed: int = 2):
        self.gx = [np.random.default_rng(s) for s in rng_seeds]
        self.gy = [np.random.default_rng(s + 2) for s in rng_seeds]
        self.gw = np.random.default_rng(sr_seed)
        for g in self.gx + self.gy + [self.gw]:
            g.random(1)                     # the draw made in the constructors

    def next(self, n: int, k0: int = 0, t_epoch: int = 1):
        """(r_x (n, B), r_y (n, B), r_w (n,)) for the time steps k0 .. k0 + n - 1.

        r_x, r_y advance every step (twice, in ``recv_traces``); r_w once per learning
        epoch, so ``r_w[t]`` is meaningful only on epoch-end steps ``(k + 1) % t_epoch == 0``
        (NaN elsewhere).
        """
        rx = np.stack([g.random(2 * n)[1::2] for g in self.gx], axis=1)
        ry = np.stack([g.random(2 * n)[1::2] for g in self.gy], axis=1)
        if t_epoch == 1:
            return rx, ry, self.gw.random(n)
        ends = (np.arange(k0, k0 + n) + 1) % t_epoch == 0
        rw = np.full(n, np.nan)
        rw[ends] = self.gw.random(int(ends.sum()))
        return rx, ry, rw


@dataclasses.dataclass
class SynapseState:
    w: np.ndarray        #: (B, M, N) weights, integers in [-256, 255]
    x: np.ndarray        #: (B, 2, N) traces x1, x2 (as of the last learning epoch)
    a_buff: np.ndarray   #: (B, M) Dense's buffered output
    tx: np.ndarray = None    #: (B, N) within-epoch step of the last pre spike (0: none)
    ty: np.ndarray = None    #: (B, M) within-epoch step of the last bap (0: none)
    yr: np.ndarray = None    #: (B, 3, M) last received y1, y2, y3
    dtag: np.ndarray = None  #: (B, M, N) tag_2 (hidden bits, d = d_offset + residual)
    #: (4,) tag_2 saturations (d would leave [0, 255]), weight saturations ([-256, 255]),
    #: accumulator saturations (synapse-epochs whose w or d accumulator clipped), trace
    #: saturations (x1 / x2 impulses cut by the clip to 2**trace_bits - 1)
    counts: np.ndarray = None


#: names of :attr:`SynapseState.counts`
SYNAPSE_COUNTERS = ("tag_saturation", "weight_saturation", "acc_saturation", "trace_saturation")


def synapse_init(w_int: np.ndarray, d_offset: int = D_OFFSET) -> SynapseState:
    """LearningDense's state for weights (B, M, N): the lowest weight bit truncated (sign
    mode MIXED, first run_spk), traces 0, tag_2 at ``d_offset`` (the design's)."""
    w = np.asarray(w_int, np.int64)
    w = (w >> 1) << 1                        # truncate_weights at the first run_spk
    b, m, n = w.shape
    return SynapseState(w=w, x=np.zeros((b, 2, n), np.int64), a_buff=np.zeros((b, m), np.int64),
                        tx=np.zeros((b, n), np.int64), ty=np.zeros((b, m), np.int64),
                        yr=np.zeros((b, 3, m), np.int64),
                        dtag=np.full((b, m, n), int(d_offset), np.int64),
                        counts=np.zeros(len(SYNAPSE_COUNTERS), np.int64))


def _unit(words) -> np.ndarray:
    """uint64 words -> float64 in [0, 1) (53 bits; the numba kernel computes the same)."""
    return (np.asarray(words, np.uint64) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def _decay(values: np.ndarray, taus: np.ndarray, r) -> np.ndarray:
    """Lava's _decay_trace: floor(exp(-1/tau) v) + (r < frac); ``r`` (B,) one per trial
    (Lava's shared draw), or an array shaped like ``values`` (per-trace idealization)."""
    dec = np.exp(-1 / taus)                                   # same expression as Lava's
    ip = dec * values
    frac = ip % 1
    ip = np.floor(ip)
    r = np.asarray(r, np.float64)
    if r.ndim == 1:
        r = r[:, None, None]
    return (ip + (r < frac).astype(int)).astype(np.int64)


def _clip(x, lo, hi):
    """Clip to [lo, hi] (numpy arrays).

    Not :func:`fixedpoint.saturate`: that takes a two's-complement :class:`QFormat`, and
    Lava's accumulator bounds [-32769, 32767] (``-(2**15) - 1``, ``2**15 - 1``, verbatim
    from ``connection.py``) are not one; it also counts, which Lava does not.
    """
    return np.minimum(np.maximum(x, lo), hi)


def apply_products(products, acc, w, tags, x1, x2, y0, yv, *, d=None, u: int = 1,
                   x_u=None, y_u=None, sat=None) -> np.ndarray:
    """Add every product to the accumulator ``acc`` (B, M, N), Lava's fixed-point applier.

    x1, x2: (B, 1, N) or (B, M, N) traces and yv: dict name -> (B, M, 1) y traces as seen by
    the y0 products (at the bap's step); ``x_u = (x1, x2)``, ``y_u`` the same for the u
    products (at the epoch's end; default: the same arrays).  y0: (B, M, 1) bap;
    ``u``: the u<k> dependency this epoch (0 / 1); ``d``: tag_2 (B, M, N).  Widths and
    the accumulator come from each product's ``engine``.  ``sat``: a bool array like
    ``acc``, or-ed with "a clip changed this accumulator" (Lava clips silently).
    """
    vy0 = {"x1": x1, "x2": x2, "w": w, "t": tags, "d": d, **yv}
    vu = dict(vy0)
    if x_u is not None:
        vu["x1"], vu["x2"] = x_u
    if y_u is not None:
        vu.update(y_u)
    for p in products:
        e = p.engine
        lo, hi = -(2 ** e.accumulator_bits) - 1, 2 ** e.accumulator_bits - 1
        if p.dep == "y0":
            cur, vals = y0.astype(np.int64), vy0
        else:
            cur, vals = np.full((1, 1, 1), int(u), np.int64), vu
        for var, const in p.factors:
            width = var_width(e, var)
            cur = cur * _clip(vals[var] + const, -(2 ** width), 2 ** width - 1)
        cur = ((cur * p.mant) >> p.shift) << (p.exp + e.acc_shift)
        new = _clip(acc + _clip(cur, lo, hi), lo, hi)
        if sat is not None:
            sat |= new != acc + cur
        acc = new
    return acc


def _round_acc(acc, acc_shift, r_shared, words):
    """Stochastic rounding of the accumulator to the variable's grid: Lava's
    ``floor(acc / 2**s) + (r < frac)`` with the shared float ``r_shared``, or (``words``
    given, per-synapse idealization) ``(acc >> s) + (top s bits of word < acc mod 2**s)``."""
    if words is None:
        ip = acc / 2 ** acc_shift
        frac = ip % 1
        ip = np.floor(ip)
        ip = (ip + (r_shared < frac).astype(int)).astype(int)
        return ((ip * 2 ** acc_shift).astype(np.int32) >> acc_shift).astype(np.int64)
    r = (np.asarray(words, np.uint64) >> np.uint64(64 - acc_shift)).astype(np.int64)
    return (acc >> acc_shift) + (r < (acc & ((1 << acc_shift) - 1)))


def synapse_step(d: Design, syn: SynapseState, x_spk: np.ndarray, bap, y1, y2, y3, rx, ry, rw,
                 tags_bmn: np.ndarray, products=None, *, k: int = 0, seed: int = 0,
                 trials=None):
    """Everything LearningDense does after sending a_out in step ``k`` (in place).

    Spiking phase every step (Dense output, within-epoch spike times, a second pre spike
    in the epoch adds its impulse at once, the received y replace the old); learning phase
    on the epoch's last step ``(k + 1) % t_epoch == 0``: the traces are decayed step by
    step through the epoch with that step's ``rx`` / ``ry`` (one draw for the whole epoch,
    as Lava's ``_compute_trace_histories``), impulses added at the recorded spike steps;
    y0 products see the traces at the last bap's step, u products at the epoch's end; then
    w (and tag_2 with hidden bits) are stochastically rounded with ``rw``.
    ``k``, ``seed``, ``trials`` index the counter RNG of the per-synapse roundings.
    """
    e = d.engine
    te = e.t_epoch
    products = d.products if products is None else products
    x_spk = np.asarray(x_spk, np.int64)
    tmax = 2 ** e.trace_bits - 1
    ts = k % te + 1                                           # within-epoch time step
    # Dense: a_buff for the next step, from this step's spikes and the pre-learning weights
    syn.a_buff = np.einsum("bmn,bn->bm", syn.w, x_spk)
    if d.weight_exp:
        syn.a_buff = syn.a_buff << d.weight_exp
    spk = x_spk.astype(bool)
    multi = (syn.tx > 0) & spk
    if multi.any():                          # a second spike in the epoch: impulse now
        syn.counts[3] += int(np.count_nonzero(multi[:, None, :] & (syn.x + d.k_x > tmax)))
        syn.x = np.where(multi[:, None, :], np.clip(syn.x + d.k_x, 0, tmax), syn.x)
    syn.tx = np.where(spk, ts, syn.tx)
    syn.ty = np.where(np.asarray(bap).astype(bool), ts, syn.ty)
    syn.yr = np.stack([y1, y2, y3], axis=1).astype(np.int64)          # (B, 3, M)
    if (k + 1) % te:
        return
    b, m, n = syn.w.shape
    trials = np.arange(b) if trials is None else np.asarray(trials, np.int64)
    per_trace = e.trace_rounding == "per_synapse"
    k_first = k + 1 - te                                       # global step of ts = 1
    # trace histories through the epoch (index 0: as stored, t: after within-epoch step t)
    xh, yh = [syn.x], [syn.yr]
    taus_x, taus_y = np.array([[d.x1_tau], [d.x2_tau]]), np.full((3, 1), e.y_tau)
    for t in range(1, te + 1):
        if per_trace:
            ix = (trials[:, None, None] << 32) | (np.arange(2)[:, None] * n + np.arange(n))
            iy = (trials[:, None, None] << 32) | (np.arange(3)[:, None] * m + np.arange(m))
            r_x = _unit(rng.random_bits(seed, STREAM_X_ROUND, k_first + t - 1, ix))
            r_y = _unit(rng.random_bits(seed, STREAM_Y_ROUND, k_first + t - 1, iy))
        else:
            r_x, r_y = rx, ry
        x = _decay(xh[-1], taus_x, r_x)
        hit = (syn.tx == t)[:, None, :]
        syn.counts[3] += int(np.count_nonzero(hit & (x + d.k_x > tmax)))
        x = np.where(hit, np.clip(x + d.k_x, 0, tmax), x)
        xh.append(x)
        yh.append(_decay(yh[-1], taus_y, r_y))
    xh, yh = np.stack(xh), np.stack(yh)                        # (te+1, B, 2, N), (te+1, B, 3, M)
    syn.x = xh[-1]
    bi = np.arange(b)[:, None]
    x_y0 = xh[syn.ty, bi]                                       # (B, M, 2, N)
    y_y0 = yh[syn.ty, bi, :, np.arange(m)[None, :]]             # (B, M, 3)
    yv = {f"y{j + 1}": y_y0[:, :, j, None] for j in range(3)}
    yu = {f"y{j + 1}": yh[-1][:, j, :, None] for j in range(3)}
    ku = max([u_exponent(p.dep) or 0 for p in tuple(products) + d.dd_products] + [0])
    u = int(((k + 1) // te) % (2 ** ku) == 0)
    y0 = np.asarray(bap, np.int64)[:, :, None] if te == 1 else (syn.ty > 0)[:, :, None]
    args = dict(d=syn.dtag, u=u, x_u=(xh[-1][:, 0:1, :], xh[-1][:, 1:2, :]), y_u=yu)
    sat = np.zeros(syn.w.shape, bool)
    acc = apply_products(products, syn.w << e.acc_shift, syn.w, tags_bmn, x_y0[:, :, 0, :],
                         x_y0[:, :, 1, :], y0, yv, sat=sat, **args)
    per_w = e.weight_rounding == "per_synapse"
    idx = (trials[:, None, None] << 32) | (np.arange(m)[:, None] * n + np.arange(n))
    words = rng.random_bits(seed, STREAM_W_ROUND, k, idx) if per_w else None
    w = _round_acc(acc, e.acc_shift, rw, words)
    top = 2 ** (e.synaptic_bits - 1)
    syn.counts[1] += int(np.count_nonzero((w < -top) | (w > top - 1)))
    w_new = np.clip(w, -top, top - 1)
    if d.dd_products:
        acc_d = apply_products(d.dd_products, syn.dtag << e.acc_shift, syn.w, tags_bmn,
                               x_y0[:, :, 0, :], x_y0[:, :, 1, :], y0, yv, sat=sat, **args)
        syn.counts[0] += int(np.count_nonzero(acc_d < 0))
        acc_d = np.maximum(acc_d, 0)                   # tag_2 is unsigned in Lava
        words = rng.random_bits(seed, STREAM_D_ROUND, k, idx) if per_w else None
        dn = _round_acc(acc_d, e.acc_shift, rw, words)
        syn.counts[0] += int(np.count_nonzero(dn > top - 1))
        syn.dtag = np.clip(dn, 0, top - 1)             # unsigned 8 bits (W_TAG_2_U)
    syn.counts[2] += int(np.count_nonzero(sat))
    syn.w = w_new
    syn.tx[:] = 0
    syn.ty[:] = 0
