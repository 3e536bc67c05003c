"""Range use of the learning-engine model from every step: running extremes per trial.

The learning neuron and LearningDense keep, per trial, the smallest and the largest integer
code every variable of :data:`EXTREME_VARIABLES` took over every step (over the trial's
neurons or afferents or synapses), whatever is recorded; the weights and tag_2 start with
their initial values.  The numba kernel (:mod:`.kernel`) counts them inside its step, the
numpy path with :func:`note_neuron` and :func:`note_synapse` after each step; both see the
same values, so the extremes are identical bit for bit (``tests/emulator/learning/test_le_extremes.py``).
Counting changes no other bit of a run.
"""
from __future__ import annotations

import numpy as np

from .rule_design import Design

#: The variables whose extremes are counted, in the column order of the ``lo`` / ``hi``
#: arrays (B, len(EXTREME_VARIABLES)), and their integer codes:
#:
#: * ``x1``, ``x2``: the presynaptic traces as stored after every step, trace units (integers
#:   0 .. 2**trace_bits - 1; ``k_x`` per spike)
#: * ``potential``: V, S.v_frac mV
#: * ``vq``: the coded potential ``y3 - y_offset`` (graded: ``L V``), units ``v_lsb`` mV
#: * ``sigma``: sigma(V), U0.sigma_frac
#: * ``error``: e, S.error_frac (1 per step)
#: * ``gamma_s``: the neuron's gamma_s estimate, U.gamma_frac
#: * ``post``: this step's own post factor ``eta gamma_s (1 - sigma) e`` before the carry,
#:   units ``E 2**-prob_frac`` (``E = d.e_q``)
#: * ``amount``: the post factor with the carried excess (what is coded), same units
#: * ``coded``: what the coding drew for it (graded: ``+-L E``, events: ``+-E_q`` or 0), same
#:   units
#: * ``carry``: the amount left for the next steps after the coding, same units
#: * ``weights``: the visible weights, integers (LSB ``2**-w_frac``)
#: * ``tag_2``: tag_2 (hidden bits, ``d_offset`` + residual), integers; equal to its offset
#:   when the design has no hidden bits
EXTREME_VARIABLES = ("x1", "x2", "potential", "vq", "sigma", "error", "gamma_s", "post",
                     "amount", "coded", "carry", "weights", "tag_2")
(EX_X1, EX_X2, EX_V, EX_VQ, EX_SIGMA, EX_ERROR, EX_GAMMA, EX_POST, EX_AMOUNT, EX_CODED,
 EX_CARRY, EX_W, EX_TAG2) = range(len(EXTREME_VARIABLES))
N_EXTREMES = len(EXTREME_VARIABLES)
#: neuron variables: (column, NeuronState field)
NEURON_FIELDS = ((EX_V, "v"), (EX_VQ, "vq"), (EX_SIGMA, "sigma"), (EX_ERROR, "err"),
                 (EX_GAMMA, "gamma"), (EX_POST, "post"), (EX_AMOUNT, "amount"),
                 (EX_CODED, "coded"), (EX_CARRY, "carry"))


def extremes_init(w: np.ndarray, dtag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``lo``, ``hi`` (B, N_EXTREMES) int64 before the first step: empty (lo > hi) except the
    weights and tag_2, which hold their initial values (B, M, N) integers."""
    b = w.shape[0]
    lo = np.full((b, N_EXTREMES), np.iinfo(np.int64).max, np.int64)
    hi = np.full((b, N_EXTREMES), np.iinfo(np.int64).min, np.int64)
    for col, a in ((EX_W, w), (EX_TAG2, dtag)):
        a = np.asarray(a, np.int64).reshape(b, -1)
        lo[:, col] = a.min(axis=1)
        hi[:, col] = a.max(axis=1)
    return lo, hi


def _note(lo, hi, col: int, values: np.ndarray) -> None:
    v = np.asarray(values, np.int64).reshape(lo.shape[0], -1)
    np.minimum(lo[:, col], v.min(axis=1), out=lo[:, col])
    np.maximum(hi[:, col], v.max(axis=1), out=hi[:, col])


def note_neuron(lo: np.ndarray, hi: np.ndarray, neu) -> None:
    """Fold one step's neuron values (:class:`.neuron.NeuronState` after
    :func:`.neuron.neuron_step`) into ``lo`` / ``hi`` (in place)."""
    for col, field in NEURON_FIELDS:
        _note(lo, hi, col, getattr(neu, field))


def note_synapse(lo: np.ndarray, hi: np.ndarray, syn) -> None:
    """Fold the traces, weights and tag_2 after one step (:class:`.lava_replica.SynapseState`
    after :func:`.lava_replica.synapse_step`) into ``lo`` / ``hi`` (in place)."""
    _note(lo, hi, EX_X1, syn.x[:, 0])
    _note(lo, hi, EX_X2, syn.x[:, 1])
    _note(lo, hi, EX_W, syn.w)
    _note(lo, hi, EX_TAG2, syn.dtag)


def code_scales(d: Design) -> dict:
    """Physical value of one integer code of each variable of :data:`EXTREME_VARIABLES`:
    trace units (1), mV, 1, 1 per step, 1, post-factor units (``eta gamma_s (1 - sigma) e``),
    weight units."""
    nf = d.neuron
    post = d.e_q * 2.0 ** -nf.prob_frac
    return {"x1": 1.0, "x2": 1.0, "potential": 2.0 ** -nf.v_frac, "vq": d.v_lsb,
            "sigma": 2.0 ** -nf.sigma_frac, "error": 2.0 ** -nf.error_frac,
            "gamma_s": 2.0 ** -nf.gamma_frac, "post": post, "amount": post, "coded": post,
            "carry": post,
            "weights": d.lsb_w, "tag_2": d.lsb_w * 2.0 ** -d.hidden_bits}


def extremes_physical(d: Design, lo: np.ndarray, hi: np.ndarray) -> dict:
    """``lo`` / ``hi`` (B, N_EXTREMES) codes -> ``{name: (min (B,), max (B,))}`` in physical
    units (:func:`code_scales`; tag_2 as its residual ``tag_2 - d_offset`` in weight units),
    NaN where no step was seen."""
    scales = code_scales(d)
    out = {}
    for col, name in enumerate(EXTREME_VARIABLES):
        seen = lo[:, col] <= hi[:, col]
        off = d.d_offset if name == "tag_2" else 0
        out[name] = tuple(np.where(seen, (a[:, col] - off) * scales[name], np.nan)
                          for a in (lo, hi))
    return out
