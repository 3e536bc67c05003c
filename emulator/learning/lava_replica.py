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

from .constants import (ACC_HI, ACC_LO, ACC_SHIFT, SR_SEED, TRACE_MAX, W_HI, W_LO, WIDTH,
                        Y_TAU)
from .rule_design import Design


def lava_trace_seed(seed: int, trial: int) -> int:
    """``rng_seed`` of trial ``trial``'s Loihi3FLearningRule (Lava also uses +1, +2, +3)."""
    return int((int(seed) * 1_000_003 + 4 * int(trial) + 1) % (2 ** 31 - 8))


class LavaRandoms:
    """The three numpy generators LearningDense's fixed_pt model draws from, per trial."""

    def __init__(self, rng_seeds):
        self.gx = [np.random.default_rng(s) for s in rng_seeds]
        self.gy = [np.random.default_rng(s + 2) for s in rng_seeds]
        self.gw = np.random.default_rng(SR_SEED)
        for g in self.gx + self.gy + [self.gw]:
            g.random(1)                     # the draw made in the constructors

    def next(self, n: int):
        """(r_x (n, B), r_y (n, B), r_w (n,)) for the next n time steps."""
        rx = np.stack([g.random(2 * n)[1::2] for g in self.gx], axis=1)
        ry = np.stack([g.random(2 * n)[1::2] for g in self.gy], axis=1)
        return rx, ry, self.gw.random(n)


@dataclasses.dataclass
class SynapseState:
    w: np.ndarray        #: (B, M, N) weights, integers in [-256, 255]
    x: np.ndarray        #: (B, 2, N) traces x1, x2
    a_buff: np.ndarray   #: (B, M) Dense's buffered output


def synapse_init(w_int: np.ndarray) -> SynapseState:
    w = np.asarray(w_int, np.int64)
    w = (w >> 1) << 1                        # truncate_weights at the first run_spk
    b, m, n = w.shape
    return SynapseState(w=w, x=np.zeros((b, 2, n), np.int64), a_buff=np.zeros((b, m), np.int64))


def _decay(values: np.ndarray, taus: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Lava's _decay_trace: floor(exp(-1/tau) v) + (r < frac), one r per trial."""
    dec = np.exp(-1 / taus)                                   # same expression as Lava's
    ip = dec * values
    frac = ip % 1
    ip = np.floor(ip)
    return (ip + (r[:, None, None] < frac).astype(int)).astype(np.int64)


def _clip(x, lo, hi):
    """Clip to [lo, hi] (numpy arrays).

    Not :func:`fixedpoint.saturate`: that takes a two's-complement :class:`QFormat`, and
    Lava's accumulator bounds [-32769, 32767] (``ACC_LO``, ``ACC_HI``, verbatim from
    ``connection.py``) are not one; it also counts, which Lava does not.
    """
    return np.minimum(np.maximum(x, lo), hi)


def apply_products(products, acc, w, tags, x1, x2, y0, yv) -> np.ndarray:
    """Add every product to the accumulator ``acc`` (B, M, N), Lava's fixed-point applier.

    x1, x2: (B, 1, N) traces; y0: (B, M, 1) bap; yv: dict name -> (B, M, 1) seen y traces.
    """
    vals = {"x1": x1, "x2": x2, "w": w, "t": tags, **yv}
    for p in products:
        cur = y0.astype(np.int64) if p.dep == "y0" else np.ones((1, 1, 1), np.int64)
        for var, const in p.factors:
            width = WIDTH[var]
            cur = cur * _clip(vals[var] + const, -(2 ** width), 2 ** width - 1)
        cur = ((cur * p.mant) >> p.shift) << (p.exp + ACC_SHIFT)
        acc = _clip(acc + _clip(cur, ACC_LO, ACC_HI), ACC_LO, ACC_HI)
    return acc


def synapse_step(d: Design, syn: SynapseState, x_spk: np.ndarray, bap, y1, y2, y3, rx, ry, rw,
                 tags_bmn: np.ndarray, products=None):
    """Everything LearningDense does after sending a_out, for one time step (in place)."""
    products = d.products if products is None else products
    x_spk = np.asarray(x_spk, np.int64)
    # Dense: a_buff for the next step, from this step's spikes and the pre-learning weights
    syn.a_buff = np.einsum("bmn,bn->bm", syn.w, x_spk)
    if d.weight_exp:
        syn.a_buff = syn.a_buff << d.weight_exp
    # received third factors, decayed once
    ys = np.stack([y1, y2, y3], axis=1)                      # (B, 3, M)
    ys = _decay(ys, np.array([[Y_TAU], [Y_TAU], [Y_TAU]]), ry)
    # presynaptic traces: decay, then the impulse for this step's spikes
    x = _decay(syn.x, np.array([[d.x1_tau], [d.x2_tau]]), rx)
    spk = x_spk.astype(bool)[:, None, :]
    x = np.where(spk, np.clip(x + d.k_x, 0, TRACE_MAX), x)
    syn.x = x
    # learning: accumulator = w << 7, products, stochastic rounding to the weight grid
    acc = syn.w << ACC_SHIFT
    yv = {"y1": ys[:, 0, :, None], "y2": ys[:, 1, :, None], "y3": ys[:, 2, :, None]}
    acc = apply_products(products, acc, syn.w, tags_bmn, x[:, 0:1, :], x[:, 1:2, :],
                         np.asarray(bap, np.int64)[:, :, None], yv)
    ip = acc / 2 ** ACC_SHIFT
    frac = ip % 1
    ip = np.floor(ip)
    ip = (ip + (rw < frac).astype(int)).astype(int)
    w = ((ip * 2 ** ACC_SHIFT).astype(np.int32) >> ACC_SHIFT).astype(np.int64)
    syn.w = np.clip(w, W_LO, W_HI)
