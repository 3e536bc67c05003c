"""The learning neuron's integer step (numpy): V, sigma(V), the error, gamma_s, the events.

Each step the neuron filters the dendritic current ``a_out`` of LearningDense, computes V,
sigma(V) (lookup table), the teacher error e and gamma_s (from a running mean of
sigma (1 - sigma)^2), and sends the third factors: the back-propagating spike (positive
event), ``y1`` (negative event) and ``y3 = 64 + Vq``.

Every state variable and intermediate is a ``d.neuron.word_bits``-bit word (24: Loihi 2's
neuron word), signed, or unsigned for the magnitudes gamma_s and gamma_s (1 - sigma); the
product of two words is a double word that one shift brings back into a word (a
multiply-shift; two products may be summed in the double word first, a multiply-accumulate).
A result beyond its word is saturated and counted (``word_saturation``); the input is
Dense's 16-bit ``a_out`` (``input_saturation``).  gamma_s needs no division (a reciprocal
table and two Newton steps, :mod:`fixedpoint.recip`); the graded level needs none either
(compares).  ``docs/learning_neuron_program.md`` lists the program word operation by word
operation, and ``tests/emulator/learning/test_neuron_program.py`` holds it to this code.  The Lava neuron model
(:mod:`lava_procs.learning_engine`) calls :func:`neuron_step`, so the arithmetic is shared.
Lava's counterpart: a ``LearningNeuronModelFixed`` (``lava/magma/core/model/py/neuron.py``).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from emulator.rule_math import gauss_moments, membrane_stats
from fixedpoint import rng
from fixedpoint.recip import recip_word
from fixedpoint.rounding import shift_right

from .constants import A_OUT_BITS, NEURON_COUNTERS, STREAM_EVENT, STREAM_VQ
from .rule_design import Design


def _hu(x, s: int) -> np.ndarray:
    """Round half up of ``x / 2**s`` (int64): :func:`fixedpoint.rounding.shift_right`.

    Equal, bit for bit, to the former private ``(x + (1 << (s - 1))) >> s`` for every shift
    that one accepted (``1 <= s``) whenever that sum does not wrap (here values stay far
    below 2**62); ``s = 0`` is exact instead of an error.
    """
    return shift_right(x, s, "half_up")


def _shr(x, s: int) -> np.ndarray:
    """``x / 2**s`` rounded half up for ``s > 0``, ``x * 2**-s`` (exact) for ``s <= 0``."""
    x = np.asarray(x, np.int64)
    return _hu(x, s) if s > 0 else x << -s


#: indices into NeuronState.counts
_C_WORD, _C_INPUT = NEURON_COUNTERS.index("word_saturation"), NEURON_COUNTERS.index("input_saturation")


def _word(st: "NeuronState", x, bits: int, signed: bool = True) -> np.ndarray:
    """``x`` saturated to a ``bits``-bit word (signed, or unsigned); clips are counted in
    ``word_saturation``."""
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    x = np.asarray(x, np.int64)
    bad = (x < lo) | (x > hi)
    if bad.any():
        st.counts[_C_WORD] += int(np.count_nonzero(bad))
        x = np.clip(x, lo, hi)
    return x


@dataclasses.dataclass
class NeuronState:
    """Integer state of the learning neuron, arrays (B, M) (B trials, M neurons)."""

    a_m: np.ndarray      #: sum_i W_i a_m,i (slow filter of the dendritic current), F_A
    a_s: np.ndarray      #: fast filter, F_A
    hbar: np.ndarray     #: running mean of sigma (1-sigma)^2, U0.hbar_frac
    gamma: np.ndarray    #: gamma_s, U8.16
    v: np.ndarray        #: last V, S16.8 mV
    sigma: np.ndarray    #: last sigma, U0.16
    err: np.ndarray      #: last e, S.16
    p: np.ndarray        #: last |post amount| in units E (event probability), U.prob_frac
    counts: np.ndarray   #: (len(NEURON_COUNTERS),)
    #: (B, M, 2) events drawn but not yet sent (positive, negative): with t_epoch > 1 the
    #: engine sees one bap and the last y per epoch, so extra events wait for the next epoch
    pend: np.ndarray = None
    sent: np.ndarray = None   #: (B, M) a bap was sent in the current epoch (0/1)
    #: (B, M) signed post amount not sent yet, units E 2**-prob_frac: what exceeded one
    #: step (event probability 1, the top level) and, graded with t_epoch > 1, the epoch so far
    carry: np.ndarray = None
    #: (B, M, 2) positive / negative events (graded: levels) sent
    events: np.ndarray = None
    #: (B, M) last step's own signed post factor before the carry, units E 2**-prob_frac
    post: np.ndarray = None
    #: (B, M) last step's signed post amount with the carried excess (what was coded), same units
    amount: np.ndarray = None
    #: (B, M) what the last step's coding drew for that amount, signed, same units: graded
    #: ``+-L E`` (``E = unit_ratio E_n`` if positive, ``E_n`` if negative), events ``+-E_q``
    #: or 0 (drawn this step; with t_epoch > 1 it may be sent later)
    coded: np.ndarray = None
    #: (B, M) last step's coded potential ``y3 - y_offset`` (graded: ``L V``), units v_lsb mV
    vq: np.ndarray = None


def _gamma_from_hbar(d: Design, hbar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """gamma_s = 1 / (phi_max beta^2 hbar) in U8.16, saturated; and the saturation mask.

    No division: ``1 / hbar ~= y 2**-(W - 2 + e)`` (:func:`fixedpoint.recip.recip_word`: a
    count-leading-zeros, a 256-entry seed table, two Newton steps in W-bit words), then one
    multiply-shift by ``ginv_mant 2**-ginv_shift ~= 1 / (phi_max beta^2)``.  Within
    ``2**-21`` relative (plus the half-LSB of the last shift) of the exact quotient
    (``tests/emulator/learning/test_neuron_program.py``)."""
    nf = d.neuron
    w = nf.word_bits
    hbar = np.asarray(hbar, np.int64)
    top = (np.int64(1) << nf.gamma_bits) - 1
    y, e = recip_word(hbar, w)
    q = y * d.ginv_mant                                        # double word
    s = d.ginv_shift + (w - 2) + e - nf.gamma_frac - nf.hbar_frac
    left = np.maximum(-s, 0)
    big = q > (top >> np.minimum(left, 62))                    # a left shift that overflows
    g = np.where(s > 0, (q + (np.int64(1) << np.maximum(s - 1, 0))) >> np.maximum(s, 0),
                 np.where(big, top, q << np.minimum(left, 62)))
    sat = (hbar <= 0) | (g > top) | ((s <= 0) & big)
    return np.where(sat, top, g), sat


def neuron_init(d: Design, w_init_int: np.ndarray) -> NeuronState:
    """Neuron state for weights (B, M, N) (integers): filters 0, hbar from the host.

    The host ("deploy") computes E[sigma (1 - sigma)^2] for V ~ N(m, v) of the initial
    weights (m = sum w r, v = sum w^2 r / c_eps; docs/model.md#membrane-potential-statistics)
    once; afterwards the neuron tracks it online.
    """
    w = np.asarray(w_init_int, np.float64) * d.lsb_w
    b, m, _ = w.shape
    mu, var = membrane_stats(w, d.rates, d.params.c_eps)
    i1 = gauss_moments(mu, var, d.params)[0]                      # E[h], h = A s (1-s)^2
    hbar = np.floor(i1 / (d.params.phi_max * d.params.beta ** 2) * 2 ** d.neuron.hbar_frac + 0.5)
    hbar = hbar.astype(np.int64)
    z = lambda: np.zeros((b, m), np.int64)  # noqa: E731
    st = NeuronState(a_m=z(), a_s=z(), hbar=hbar, gamma=z(), v=z(), sigma=z(), err=z(), p=z(),
                     counts=np.zeros(len(NEURON_COUNTERS), np.int64),
                     pend=np.zeros((b, m, 2), np.int64), sent=z(), carry=z(),
                     events=np.zeros((b, m, 2), np.int64), post=z(), amount=z(), coded=z(),
                     vq=z())
    st.gamma = _gamma_from_hbar(d, hbar)[0]
    return st


def sigma_lookup(d: Design, v: np.ndarray) -> np.ndarray:
    """sigma(V) U0.16 from V S16.8 mV: nodes every 2**-sigma_node_frac mV over
    [-sigma_span_mv, sigma_span_mv), linear interpolation (``sigma_interpolate``) or the
    nearest node (round half up)."""
    nf = d.neuron
    sub = nf.v_frac - nf.sigma_node_frac
    span = nf.sigma_span_mv << nf.v_frac
    pos = np.clip(np.asarray(v, np.int64) + span, 0, 2 * span - 1)
    lut = d.sigma_lut
    if not nf.sigma_interpolate:
        return lut[_hu(pos, sub)]
    j = pos >> sub
    t = pos - (j << sub)
    return lut[j] + _hu((lut[j + 1] - lut[j]) * t, sub)


def neuron_step(d: Design, st: NeuronState, a_in: np.ndarray, y: np.ndarray, k: int,
                seed: int, index: np.ndarray):
    """One step of the learning neuron, in place; returns (bap, y1, y2, y3), each (B, M).

    ``a_in`` (B, M): LearningDense's a_out this step = sum_i W_i X_i of the previous step
    (weight units).  ``y`` (B, M): teacher spikes of step k.  ``index`` (B, M): counter-RNG
    index ``trial << 32 | neuron``.  Every right shift rounds half up (values stay far
    below 2**62) except Vq's, which rounds stochastically.  Formats: ``d.neuron``.
    """
    nf = d.neuron
    fa, fd, fv, fs, fe, fh, fg, fp = (nf.filter_frac, nf.decay_frac, nf.v_frac, nf.sigma_frac,
                                      nf.error_frac, nf.hbar_frac, nf.gamma_frac, nf.prob_frac)
    w = nf.word_bits
    a_in = np.asarray(a_in, np.int64)
    y = np.asarray(y, np.int64)
    # 0. Dense's a_out is a 16-bit word
    atop = np.int64(1) << (A_OUT_BITS - 1)
    abad = (a_in < -atop) | (a_in > atop - 1)
    if abad.any():
        st.counts[_C_INPUT] += int(np.count_nonzero(abad))
        a_in = np.clip(a_in, -atop, atop - 1)
    # 1. current filters: A = sum_i W_i a_i(k-1); x_i(k) = scale (d_m a_m(k-1) - d_s a_s(k-1))
    #    because a spike in bin k adds equally to both traces, so V(k) needs no bin-k input.
    st.a_m = _word(st, _hu(st.a_m * d.dm, fd) + (a_in << fa), w)
    st.a_s = _word(st, _hu(st.a_s * d.ds, fd) + (a_in << fa), w)
    diff = _word(st, _hu(st.a_m * d.dm - st.a_s * d.ds, fd), w)                 # F_A
    v = _hu(diff * d.vk_mant, fa + d.vk_shift - fv)
    vtop = 2 ** (nf.v_bits - 1)
    sat = (v < -vtop) | (v > vtop - 1)
    if sat.any():
        st.counts[0] += int(np.count_nonzero(sat))
        v = np.clip(v, -vtop, vtop - 1)
    # 2. sigma, error
    s = sigma_lookup(d, v)
    s1 = (1 << fs) - s
    e = (y << fe) - _hu(s * d.phidt_mant, fs + d.phidt_shift - fe)
    # 3. gamma_s from the running mean of sigma (1 - sigma)^2
    h = _hu(_hu(s * s1, fs) * s1, fs)                                            # U0.16
    st.hbar = st.hbar + _hu(_word(st, (h << (fh - fs)) - st.hbar, w), nf.hbar_tau_shift)
    if k % nf.gamma_every == 0:
        st.gamma, gsat = _gamma_from_hbar(d, st.hbar)
        st.counts[3] += int(np.count_nonzero(gsat))
    # 4. the post factor in units: a = |P| / E (U.prob_frac), E = E_q (events) or E_n
    #    (graded); P = eta gamma_s (1 - sigma) e (approx) or eta (1 - sigma) e (euclid).
    #    |e| eta / E first (ek_frac bits), so small errors keep their precision.
    gam = st.gamma if d.mapped_rule == "approx" else np.int64(1) << fg
    g1 = _word(st, _hu(gam * s1, fs), w, signed=False)                          # U8.fg
    ek = _word(st, _shr(np.abs(e) * d.k_mant, fe + d.k_shift - d.ek_frac), w)   # U.ek_frac
    a = _word(st, _shr(g1 * ek, fg + d.ek_frac - fp), w)                         # U.prob_frac
    amount = _word(st, np.where(e > 0, a, -a) + st.carry, w)  # signed, with last steps' excess
    r = (rng.random_bits(seed, STREAM_EVENT, k, index) >> np.uint64(64 - fp)).astype(np.int64)
    if d.encoding == "graded":
        level, amount_left = post_levels(d, amount, r, emit=(k + 1) % d.engine.t_epoch == 0)
        pos = (level > 0) & (amount > 0)
        bap = pos.astype(np.int64)
        y1 = level * d.y_unit
        y2 = np.full(bap.shape, d.y2_const, np.int64)
        st.events[..., 0] += np.where(pos, level, 0)
        st.events[..., 1] += np.where(level > 0, level, 0) * (1 - bap)
        vmul = level
        coded = np.where(amount > 0, level * d.unit_ratio, -level) << fp
    else:
        # events: P(event) = |amount| / E_q; beyond 1 the event is sure and the excess waits
        one = np.int64(1) << fp
        over = np.abs(amount) > one
        event = over | (r < np.abs(amount))
        amount_left = np.where(over, amount - np.sign(amount) * one, 0)
        bap, y1, y2 = send_events(d, st, event & (amount > 0), event & (amount < 0), k)
        st.events[..., 0] += (y2 > 0) if d.all_y0 else bap
        st.events[..., 1] += y1 > 0
        vmul = np.int64(1)
        coded = np.where(event, np.sign(amount) * one, 0)
    if (k + 1) % d.engine.t_epoch == 0 or d.encoding == "events":
        st.counts[1] += int(np.count_nonzero(amount_left))     # excess beyond one step
    st.carry = _saturate_carry(d, st, amount_left)
    p = np.abs(amount) if d.encoding == "graded" else np.minimum(np.abs(amount), np.int64(1) << fp)
    if d.mapped_rule != "approx":
        vmul = np.int64(0)           # no heterosynaptic term: y3 stays at its offset
    # 5. V (graded: L V) for the heterosynaptic term, stochastically rounded to v_lsb
    sh = fv + d.vq_shift
    low = (rng.random_bits(seed, STREAM_VQ, k, index) & np.uint64((1 << sh) - 1)).astype(np.int64)
    vq = (vmul * v * d.vq_mant + low) >> sh
    yo = d.y_offset
    vsat = (vq < -yo) | (vq > yo - 1)
    if vsat.any():
        st.counts[2] += int(np.count_nonzero(vsat))
        vq = np.clip(vq, -yo, yo - 1)
    y3 = vq + yo
    st.v, st.sigma, st.err, st.p = v, s, e, p
    st.post, st.amount, st.coded, st.vq = np.where(e > 0, a, -a), amount, coded, vq
    return bap, y1, y2, y3


def post_levels(d: Design, amount, r, emit: bool):
    """Graded coding: the level L (0..levels) sent for the signed post ``amount`` (units
    E_n 2**-prob_frac), and the amount left for the next steps.

    A positive amount is counted in units E_p = unit_ratio E_n, a negative one in E_n.
    Below the top level L is the amount stochastically rounded (up with probability equal
    to the remainder's fraction of a unit: ``r unit_ratio < rem`` with ``r`` the top
    prob_frac bits of the step's random word), and nothing is left; at or beyond the top
    level (found by compares against 1..levels units: no division)
    level L = levels and the excess is left (carried: no update is capped).  On steps that
    do not end an epoch (``emit`` False) nothing is sent and the whole amount is left.
    """
    fp = d.neuron.prob_frac
    amount = np.asarray(amount, np.int64)
    if not emit:
        return np.zeros(amount.shape, np.int64), amount
    unit = np.where(amount > 0, np.int64(d.unit_ratio) << fp, np.int64(1) << fp)
    mag = np.abs(amount)
    n = np.zeros(mag.shape, np.int64)
    for j in range(1, d.levels + 1):                     # compares, no division
        n += mag >= j * unit
    rem = mag - n * unit
    top = n >= d.levels
    ratio = np.where(amount > 0, d.unit_ratio, 1)
    level = np.where(top, d.levels, n + (r * ratio < rem))
    left = np.where(top, np.sign(amount) * rem, 0)
    return level.astype(np.int64), left.astype(np.int64)


def _saturate_carry(d: Design, st: NeuronState, carry):
    """The carry within its signed ``carry_bits`` word; clips are counted."""
    top = (np.int64(1) << (d.neuron.carry_bits - 1)) - 1
    sat = (carry < -top) | (carry > top)
    if sat.any():
        st.counts[4] += int(np.count_nonzero(sat))
        carry = np.clip(carry, -top, top)
    return carry


def send_events(d: Design, st: NeuronState, pos, neg, k: int):
    """What the neuron sends at step ``k`` for this step's events ``pos``, ``neg`` (B, M):
    (bap, y1, y2) as int64 (B, M).

    LearningDense sees, per epoch of ``t_epoch`` steps, whether a bap came (y0, with the
    x traces taken at the last bap's step) and only the y values received on the epoch's
    last step (``(k + 1) % t_epoch == 0``).  So events wait in ``st.pend`` and go out one
    per epoch and sign:

    * default encoding: a positive event is the bap, sent at once unless one was already
      sent this epoch; a negative one is ``y1 = y_event`` on the epoch's last step; y2 is
      the constant ``d.y2_const`` (the hidden-bits carry's divisor, else 0);
    * ``d.all_y0`` (hidden bits): any pending event sends the bap (once per epoch) and the
      epoch's last step carries ``y2 = y_event`` (positive) and / or ``y1 = y_event``.

    With ``t_epoch = 1`` every event is sent in the step it is drawn.
    """
    te = d.engine.t_epoch
    st.pend[..., 0] += pos
    st.pend[..., 1] += neg
    if k % te == 0:
        st.sent[...] = 0
    last = (k + 1) % te == 0
    ye = d.y_event
    if d.all_y0:
        bap = ((st.pend[..., 0] + st.pend[..., 1] > 0) & (st.sent == 0)).astype(np.int64)
        st.sent |= bap
        if last:
            go_p = (st.sent > 0) & (st.pend[..., 0] > 0)
            go_n = (st.sent > 0) & (st.pend[..., 1] > 0)
        else:
            go_p = go_n = np.zeros(bap.shape, bool)
        st.pend[..., 0] -= go_p
        st.pend[..., 1] -= go_n
        return bap, np.where(go_n, ye, 0).astype(np.int64), np.where(go_p, ye, 0).astype(np.int64)
    bap = ((st.pend[..., 0] > 0) & (st.sent == 0)).astype(np.int64)
    st.pend[..., 0] -= bap
    st.sent |= bap
    go_n = (st.pend[..., 1] > 0) & last
    st.pend[..., 1] -= go_n
    return bap, np.where(go_n, ye, 0).astype(np.int64), np.full(bap.shape, d.y2_const, np.int64)


def neuron_counters(st: NeuronState) -> dict:
    return {name: int(n) for name, n in zip(NEURON_COUNTERS, st.counts)}
