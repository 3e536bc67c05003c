"""What a design does to weights, in expectation and as stored: the weight grid
(:func:`quantize_weights`), the engine's expected update direction
(:func:`expected_update`) and a deliberately mis-scaled product (:func:`mis_scaled`)."""
from __future__ import annotations

import dataclasses

import numpy as np

from emulator.rule_math import approx_terms, homosynaptic_factor, rule_bracket, sigmoid

from .design_record import Design


def mis_scaled(d: Design, index: int, delta: int = 1) -> Design:
    """The same design with product ``index`` scaled by 2**delta (an off-by-one shift)."""
    prods = list(d.products)
    p = prods[index]
    prods[index] = dataclasses.replace(p, exp=p.exp + delta)
    return dataclasses.replace(d, products=tuple(prods))


def quantize_weights(d: Design, w: np.ndarray) -> np.ndarray:
    """Float weights -> even integers on the 2**-w_frac grid in [-256, 254].

    Even because LearningDense's first run_spk truncates the lowest bit (sign mode MIXED);
    later updates can make weights odd.
    """
    top = 2 ** (d.engine.synaptic_bits - 1)
    q = 2 * np.floor(np.asarray(w, dtype=np.float64) * 2.0 ** d.w_frac / 2 + 0.5)
    return np.clip(q, -top, top - 2).astype(np.int64)


def expected_update(d: Design, W: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Expected weight update of the engine for float weights W (S, N), USPs X (S, N) and
    expected teacher counts y (S,), up to a positive factor per sample (only the direction
    is meaningful): the expectation over the engine's event draws and unbiased stochastic
    roundings, i.e. ``eta (1 - sigma) e`` times the engine's bracket

        c_eps x_i / r_i * (t_i / (T / r_i)) - c_eps c_u + c_w clip(V, +-63 v_lsb) w_q,i

    with the weights on the design's grid (even integers, as LearningDense stores them),
    the quantized tags and V's clipped range.  Neglected: event-probability saturation, the
    online gamma_s estimate (a positive scalar per neuron), and the floor of the
    heterosynaptic products (-0.5 accumulator unit per event).
    """
    p = d.params
    W = np.asarray(W, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    wq = quantize_weights(d, W) * d.lsb_w
    V = np.sum(wq * X, axis=-1)
    Vc = np.clip(V, -(d.y_offset - 1) * d.v_lsb, (d.y_offset - 1) * d.v_lsb)
    s = sigmoid(V, p)
    e = np.asarray(y, dtype=np.float64) - p.phi_max * p.dt * s
    rates = np.asarray(d.rates, dtype=np.float64)
    # c_eps / r_i as the tags realise it: t_i / (T / r_i) (0 for silent afferents)
    with np.errstate(divide="ignore", invalid="ignore"):
        homo = np.where(rates > 0, homosynaptic_factor(rates, p.c_eps) * d.tags * rates
                        / d.tag_scale, 0.0)
    gamma_u, gamma_w = approx_terms(Vc, p)
    bracket = rule_bracket(homo * X, gamma_u, gamma_w[..., None], wq)
    return ((1.0 - s) * e)[..., None] * bracket
