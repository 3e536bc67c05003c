"""Simulate: the integer datapath of the approximate natural-gradient rule (numpy backend).

One call of :func:`step` advances every trial of a batch by one time step of 0.5 ms, in the
order of docs/model.md#step-order.  The same arithmetic, element by element, is compiled by numba in
:mod:`emulator.kernels`; the two are bit-identical (``tests/emulator/test_emulator_backends.py``).
``docs/datapath.md`` lists every format, rounding and saturation; in short (``F_x`` is the
fractional-bit count of variable x from the config, ``rs(v, s, mode)`` is
``fixedpoint.shift_right``: v * 2**-s rounded by ``mode``):

1. traces   a <- rs(a * decay, F_decay, traces.rounding) + X * 2**F_a ; saturate to U(bits)
2. USP      x = rs((a_m - a_s) * usp_mant, F_a + usp_shift - F_x, usp.rounding) ; sat S(bits)
3. weights  w = acc >> extra_frac (visible weight, floor)
4. V        V = rs(sum_i floor(w_i x_i * 2**-(F_w+F_x-F_V-G)), G, potential.rounding) ; sat
5. gamma_s  every ``epoch_steps``: m = sum w r, v = sum w^2 r / c_eps from the visible
            weights in integers, then a bilinear 2-D table over (m, v)
6. sigma    LUT over V's range (optionally interpolated); 1 - sigma = 2**F_s - sigma
7. error    e = y * 2**F_e - rs(sigma * phidt_mant, F_s + phidt_shift - F_e, half_up)
8. post     P = eta * gamma_s * (1 - sigma) * e   (two half-up intermediates, last rounding
            post.rounding) ; saturate S(post.bits)
9. bracket  B_i = rs(x_i * homo_mant_i, ...) - c_eps c_u + rs(rs(V c_w) * w_i, ...) ; sat
10. update  dw = rs(P * B, F_P + F_B - F_w - extra, weights.rounding); acc += dw ; sat.
            A nonzero P*B that rounds to dw = 0 counts as an underflow of ``weights``.
11. output  student spike = Bernoulli(phi_max dt sigma) from the counter RNG.

Each step is a function of :mod:`emulator.stages`; randomness for stochastic rounding comes
from :mod:`fixedpoint.rng`, one stream per rounding site (:data:`emulator.variables.STREAM_SITE`),
indexed by ``(global step, trial << 32 | unit)``: results do not depend on the batch split or
on time chunking.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from emulator import stages
from emulator.discretize import Discretized
from emulator.variables import COUNTER_INDEX, COUNTERS, RECORD_FIELD, RECORDABLE
from fixedpoint.qformat import QFormat

C_TRACE = COUNTER_INDEX["traces", "saturation"]
C_USP = COUNTER_INDEX["usp", "saturation"]
C_V = COUNTER_INDEX["potential", "saturation"]
C_GAMMA = COUNTER_INDEX["gamma_s", "saturation"]
C_POST = COUNTER_INDEX["post", "saturation"]
C_BRACKET = COUNTER_INDEX["bracket", "saturation"]
C_WSAT = COUNTER_INDEX["weights", "saturation"]
C_WUNDER = COUNTER_INDEX["weights", "underflow"]
#: Column of each recordable variable in ``State.lo`` / ``State.hi``.
EXTREME_INDEX = {name: q for q, name in enumerate(RECORDABLE)}
#: ``lo`` / ``hi`` of a trial before its first step (no value seen yet).
NO_LO, NO_HI = np.iinfo(np.int64).max, np.iinfo(np.int64).min


@dataclasses.dataclass
class State:
    """Integer state of a batch of B trials, M output neurons, N afferents.

    All arrays are int64.  ``acc`` holds the weights with ``extra_frac`` hidden bits;
    the other per-step values are those of the last completed step (for recording and for
    the Lava Vars).
    """

    trials: np.ndarray   #: (B,) global trial ids
    a_m: np.ndarray      #: (B, N) slow trace, U.F_a
    a_s: np.ndarray      #: (B, N) fast trace, U.F_a
    acc: np.ndarray      #: (B, M, N) weight accumulator, S.(F_w + extra)
    gamma: np.ndarray    #: (B, M) gamma_s, U.F_gamma
    x: np.ndarray        #: (B, N) USP, S.F_x
    v: np.ndarray        #: (B, M) membrane potential, S.F_V
    sigma: np.ndarray    #: (B, M) sigma(V), U0.F_s
    err: np.ndarray      #: (B, M) teacher error, S.F_e
    post: np.ndarray     #: (B, M) post factor, S.F_P
    spikes: np.ndarray   #: (B, M) student output spikes (0/1)
    counts: np.ndarray   #: (len(COUNTERS),) events so far
    first: np.ndarray    #: (len(COUNTERS),) first global step of each event, -1 if none
    step: int = 0        #: next global step
    #: (B, len(RECORDABLE)) running minimum / maximum of every recordable variable of each
    #: trial over every step so far (integer codes; the weights as accumulator codes with
    #: their hidden bits, the initial ones included; columns :data:`EXTREME_INDEX`;
    #: :data:`NO_LO` / :data:`NO_HI` where nothing was seen).  None: not tracked (a State
    #: wrapping Lava Vars).
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None

    def copy(self) -> "State":
        return dataclasses.replace(self, **{f.name: np.copy(getattr(self, f.name))
                                            for f in dataclasses.fields(self)
                                            if isinstance(getattr(self, f.name), np.ndarray)})


def init_state(d: Discretized, w_init: np.ndarray, trials: np.ndarray | None = None) -> State:
    """Fresh state: traces zero, weights quantized from ``w_init`` (B, M, N) floats."""
    w_init = np.asarray(w_init, dtype=np.float64)
    b, m, n = w_init.shape
    trials = np.arange(b, dtype=np.int64) if trials is None else np.asarray(trials, np.int64)
    z = lambda *s: np.zeros(s, np.int64)  # noqa: E731
    state = State(trials=trials, a_m=z(b, n), a_s=z(b, n), acc=z(b, m, n),
                  gamma=z(b, m), x=z(b, n), v=z(b, m), sigma=z(b, m), err=z(b, m), post=z(b, m),
                  spikes=z(b, m), counts=z(len(COUNTERS)), first=np.full(len(COUNTERS), -1, np.int64),
                  lo=np.full((b, len(RECORDABLE)), NO_LO, np.int64),
                  hi=np.full((b, len(RECORDABLE)), NO_HI, np.int64))
    # initial weights outside the format are saturated, and counted at step 0
    acc_fmt: QFormat = d.variables["weights"].acc_fmt
    q = np.clip(np.rint(w_init * 2.0 ** acc_fmt.frac), acc_fmt.min_int, acc_fmt.max_int)
    state.acc = q.astype(np.int64)
    w = EXTREME_INDEX["weights"]          # the initial weights are a value the register holds
    state.lo[:, w] = state.acc.reshape(b, -1).min(axis=1)
    state.hi[:, w] = state.acc.reshape(b, -1).max(axis=1)
    _add(state, C_WSAT, int(np.count_nonzero(q != np.rint(w_init * 2.0 ** acc_fmt.frac))), 0)
    return state


class Indices:
    """Counter-RNG index arrays of a batch (trial << 32 | unit)."""

    def __init__(self, trials, m, n):
        t = np.asarray(trials, np.int64)[:, None] << 32
        self.aff = t + np.arange(n, dtype=np.int64)                           # (B, N)
        self.trace_m = t + 2 * np.arange(n, dtype=np.int64)
        self.trace_s = self.trace_m + 1
        self.neuron = t + np.arange(m, dtype=np.int64)                        # (B, M)
        self.syn = (t[:, :, None] + np.arange(m * n, dtype=np.int64).reshape(1, m, n))  # (B,M,N)


def _add(state: State, which: int, n: int, step: int) -> None:
    """Count ``n`` events of counter ``which`` at global ``step``."""
    if n:
        state.counts[which] += n
        if state.first[which] < 0:
            state.first[which] = step


def step(d: Discretized, state: State, x_spk: np.ndarray, y_spk: np.ndarray, seed: int,
         idx: Indices | None = None) -> None:
    """Advance ``state`` in place by one step with input spikes (B, N) and teacher (B, M)."""
    k = state.step
    b, m, n = state.acc.shape
    if idx is None:
        idx = Indices(state.trials, m, n)
    draw = stages.Draw(seed, k)
    count = lambda which, c: _add(state, which, c, k)  # noqa: E731

    # 1. presynaptic traces
    state.a_m, c_m = stages.traces(d, state.a_m, d.decay_m, x_spk, draw, idx.trace_m)
    state.a_s, c_s = stages.traces(d, state.a_s, d.decay_s, x_spk, draw, idx.trace_s)
    count(C_TRACE, c_m + c_s)
    # 2. USP
    state.x, c = stages.usp(d, state.a_m, state.a_s, draw, idx.aff)
    count(C_USP, c)
    # 3.-4. visible weights and membrane potential
    w = state.acc >> d.w_extra
    state.v, c = stages.potential(d, w, state.x, draw, idx.neuron)
    count(C_V, c)
    # 5. gamma_s from (m, v) of the current weights, every epoch
    if k % d.gamma_epoch == 0:
        state.gamma, c = stages.gamma(d, w)
        count(C_GAMMA, c)
    # 6.-7. sigma and teacher error
    state.sigma = stages.sigmoid(d, state.v)
    state.err = stages.error(d, state.sigma, y_spk)
    # 8. post factor P = eta gamma_s (1 - sigma) e
    state.post, c = stages.post_factor(d, state.gamma, state.sigma, state.err, draw, idx.neuron)
    count(C_POST, c)
    # 9. bracket B = c_eps x / r - c_eps c_u + c_w V w
    br, c = stages.bracket(d, state.x, state.v, w, draw, idx.aff, idx.neuron, idx.syn)
    count(C_BRACKET, c)
    # 10. weight update
    state.acc, c_under, c_sat = stages.update(d, state.acc, state.post, br, draw, idx.syn)
    count(C_WUNDER, c_under)
    count(C_WSAT, c_sat)
    # 11. student output spike
    state.spikes = stages.output_spike(d, state.sigma, seed, k, idx.neuron)
    state.step = k + 1
    if state.lo is not None:
        track_extremes(state)


def track_extremes(state: State) -> None:
    """Fold the values of the step just done into ``state.lo`` / ``state.hi`` (per trial,
    over neurons and afferents; the weights' accumulator codes)."""
    b = state.acc.shape[0]
    for name, q in EXTREME_INDEX.items():
        v = getattr(state, RECORD_FIELD[name]).reshape(b, -1)
        np.minimum(state.lo[:, q], v.min(axis=1), out=state.lo[:, q])
        np.maximum(state.hi[:, q], v.max(axis=1), out=state.hi[:, q])


def run_chunk(d: Discretized, state: State, x_spk: np.ndarray, y_spk: np.ndarray, seed: int,
              record=None) -> None:
    """Advance over a chunk: x_spk (T, B, N), y_spk (T, B, M).  ``record(state)`` is called
    after every step when given."""
    b, m, n = state.acc.shape
    idx = Indices(state.trials, m, n)
    for t in range(x_spk.shape[0]):
        step(d, state, x_spk[t], y_spk[t], seed, idx)
        if record is not None:
            record(state)
