"""The learning neuron's integer step (numpy): V, sigma(V), the error, gamma_s, the events.

Each step the neuron filters the dendritic current ``a_out`` of LearningDense, computes V,
sigma(V) (lookup table), the teacher error e and gamma_s (from a running mean of
sigma (1 - sigma)^2), and sends the third factors: the back-propagating spike (positive
event), ``y1`` (negative event) and ``y3 = 64 + Vq``.  The Lava neuron model
(:mod:`lava_procs.learning_engine`) calls :func:`neuron_step`, so the arithmetic is shared.
Lava's counterpart: a ``LearningNeuronModelFixed`` (``lava/magma/core/model/py/neuron.py``).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from fixedpoint import rng
from fixedpoint.rounding import shift_right

from .constants import (F_A, F_D, F_E, F_G, F_H, F_P, F_S, F_V, G_BITS, GAMMA_EVERY,
                        H_TAU_SHIFT, NEURON_COUNTERS, SIG_NODE_FRAC, SIG_SPAN, STREAM_EVENT,
                        STREAM_VQ, V_BITS, Y_EVENT, Y_OFFSET)
from .rule_design import Design


def _hu(x, s: int) -> np.ndarray:
    """Round half up of ``x / 2**s`` (int64): :func:`fixedpoint.rounding.shift_right`.

    Equal, bit for bit, to the former private ``(x + (1 << (s - 1))) >> s`` for every shift
    that one accepted (``1 <= s``) whenever that sum does not wrap (here values stay far
    below 2**62); ``s = 0`` is exact instead of an error.
    """
    return shift_right(x, s, "half_up")



@dataclasses.dataclass
class NeuronState:
    """Integer state of the learning neuron, arrays (B, M) (B trials, M neurons)."""

    a_m: np.ndarray      #: sum_i W_i a_m,i (slow filter of the dendritic current), F_A
    a_s: np.ndarray      #: fast filter, F_A
    hbar: np.ndarray     #: running mean of sigma (1-sigma)^2, U0.28
    gamma: np.ndarray    #: gamma_s, U8.16
    v: np.ndarray        #: last V, S16.8 mV
    sigma: np.ndarray    #: last sigma, U0.16
    err: np.ndarray      #: last e, S.16
    p: np.ndarray        #: last event probability, U0.24
    counts: np.ndarray   #: (len(NEURON_COUNTERS),)


def _gamma_from_hbar(d: Design, hbar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """gamma_s = 1 / (phi_max beta^2 hbar) in U8.16 (floor), saturated; and the sat mask."""
    hbar = np.asarray(hbar, np.int64)
    den = hbar * d.a_mant
    top = 2 ** G_BITS - 1
    num = 1 << (F_G + F_H + d.a_shift)
    with np.errstate(divide="ignore"):
        g = np.where(den > 0, num // np.maximum(den, 1), top + 1)
    sat = g > top
    return np.minimum(g, top), sat


def neuron_init(d: Design, w_init_int: np.ndarray) -> NeuronState:
    """Neuron state for weights (B, M, N) (integers): filters 0, hbar from the host.

    The host ("deploy") computes E[sigma (1 - sigma)^2] for V ~ N(m, v) of the initial
    weights (m = sum w r, v = sum w^2 r / c_eps; SPEC §1.4) once; afterwards the neuron
    tracks it online.
    """
    from emulator.reference import gauss_moments
    w = np.asarray(w_init_int, np.float64) * d.lsb_w
    b, m, _ = w.shape
    mu = w @ d.rates
    var = (w * w) @ d.rates / d.params.c_eps
    i1 = gauss_moments(mu, var, d.params)[0]                      # E[h], h = A s (1-s)^2
    hbar = np.floor(i1 / (d.params.phi_max * d.params.beta ** 2) * 2 ** F_H + 0.5)
    hbar = hbar.astype(np.int64)
    z = lambda: np.zeros((b, m), np.int64)  # noqa: E731
    st = NeuronState(a_m=z(), a_s=z(), hbar=hbar, gamma=z(), v=z(), sigma=z(), err=z(), p=z(),
                     counts=np.zeros(len(NEURON_COUNTERS), np.int64))
    st.gamma = _gamma_from_hbar(d, hbar)[0]
    return st


def sigma_lookup(d: Design, v: np.ndarray) -> np.ndarray:
    """sigma(V) U0.16 from V S16.8 mV: 0.25-mV nodes over [-64, 64) mV, linear interpolation."""
    sub = F_V - SIG_NODE_FRAC
    pos = np.clip(np.asarray(v, np.int64) + (SIG_SPAN << F_V), 0, (2 * SIG_SPAN << F_V) - 1)
    j = pos >> sub
    t = pos - (j << sub)
    lut = d.sigma_lut
    return lut[j] + _hu((lut[j + 1] - lut[j]) * t, sub)


def neuron_step(d: Design, st: NeuronState, a_in: np.ndarray, y: np.ndarray, k: int,
                seed: int, index: np.ndarray):
    """One step of the learning neuron, in place; returns (bap, y1, y2, y3), each (B, M).

    ``a_in`` (B, M): LearningDense's a_out this step = sum_i W_i X_i of the previous step
    (weight units).  ``y`` (B, M): teacher spikes of step k.  ``index`` (B, M): counter-RNG
    index ``trial << 32 | neuron``.  Every right shift rounds half up (values stay far
    below 2**62) except Vq's, which rounds stochastically.
    """
    a_in = np.asarray(a_in, np.int64)
    y = np.asarray(y, np.int64)
    # 1. current filters: A = sum_i W_i a_i(k-1); x_i(k) = scale (d_m a_m(k-1) - d_s a_s(k-1))
    #    because a spike in bin k adds equally to both traces, so V(k) needs no bin-k input.
    st.a_m = _hu(st.a_m * d.dm, F_D) + (a_in << F_A)
    st.a_s = _hu(st.a_s * d.ds, F_D) + (a_in << F_A)
    diff = _hu(st.a_m * d.dm - st.a_s * d.ds, F_D)                              # F_A
    v = _hu(diff * d.vk_mant, F_A + d.vk_shift - F_V)
    vtop = 2 ** (V_BITS - 1)
    sat = (v < -vtop) | (v > vtop - 1)
    if sat.any():
        st.counts[0] += int(np.count_nonzero(sat))
        v = np.clip(v, -vtop, vtop - 1)
    # 2. sigma, error
    s = sigma_lookup(d, v)
    s1 = (1 << F_S) - s
    e = (y << F_E) - _hu(s * d.phidt_mant, F_S + d.phidt_shift - F_E)
    # 3. gamma_s from the running mean of sigma (1 - sigma)^2
    h = _hu(_hu(s * s1, F_S) * s1, F_S)                                          # U0.16
    st.hbar = st.hbar + _hu((h << (F_H - F_S)) - st.hbar, H_TAU_SHIFT)
    if k % GAMMA_EVERY == 0:
        st.gamma, gsat = _gamma_from_hbar(d, st.hbar)
        st.counts[3] += int(np.count_nonzero(gsat))
    # 4. event probability p = eta gamma_s (1 - sigma) |e| / E_q, U0.24
    g1 = _hu(st.gamma * s1, F_G + F_S - F_P)                                     # U.24
    g2 = _hu(g1 * np.abs(e), F_E)                                                # U.24
    p = _hu(g2 * d.k_mant, d.k_shift)
    one = 1 << F_P
    over = p > one
    if over.any():
        st.counts[1] += int(np.count_nonzero(over))
        p = np.minimum(p, one)
    r = (rng.random_bits(seed, STREAM_EVENT, k, index) >> np.uint64(64 - F_P)).astype(np.int64)
    event = r < p
    bap = (event & (e > 0)).astype(np.int64)
    y1 = np.where(event & (e < 0), Y_EVENT, 0).astype(np.int64)
    # 5. V for the heterosynaptic term, stochastically rounded to v_lsb
    sh = F_V + d.vq_shift
    low = (rng.random_bits(seed, STREAM_VQ, k, index) & np.uint64((1 << sh) - 1)).astype(np.int64)
    vq = (v * d.vq_mant + low) >> sh
    vsat = (vq < -Y_OFFSET) | (vq > Y_OFFSET - 1)
    if vsat.any():
        st.counts[2] += int(np.count_nonzero(vsat))
        vq = np.clip(vq, -Y_OFFSET, Y_OFFSET - 1)
    y3 = vq + Y_OFFSET
    st.v, st.sigma, st.err, st.p = v, s, e, p
    return bap, y1, np.zeros_like(y1), y3


def neuron_counters(st: NeuronState) -> dict:
    return {name: int(n) for name, n in zip(NEURON_COUNTERS, st.counts)}
