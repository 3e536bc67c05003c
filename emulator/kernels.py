"""Fused numba backend of the integer datapath: the stages of :mod:`emulator.stages` in their
numba twins (:mod:`emulator.stages_jit`), inlined into one compiled loop over (trials,
steps, neurons, afferents).  :func:`run_fused` also draws the spikes inside that loop
(:func:`emulator.spikes.spikes_step`); :func:`run_chunk` takes them as arrays (Lava, tests).
``parallel=True`` runs blocks of trials on threads, each calling the same ``nogil`` kernel.

numba's cache checks only the source file of the cached function: after editing an inlined
twin in another file (``stages_jit``, ``spikes``, ``fixedpoint.jit``) delete the ``*.nbi``
/ ``*.nbc`` files of ``emulator/__pycache__``.

It must stay bit-identical to the numpy step (``tests/emulator/test_emulator_backends.py``,
``tests/emulator/test_stages.py`` and the golden hashes of ``tests/emulator/test_golden.py``).  The state
travels as one :class:`KernelState` named tuple, the scalars as one record
(:func:`emulator.stages_jit.pack`), the tables as :class:`KernelTables` and the recording
arrays as :class:`KernelRecords`, all derived from :mod:`emulator.variables`.

Every step also folds each recordable variable into its trial's running minimum and maximum
(``State.lo`` / ``State.hi``, the report's range use), equal to what the numpy step's
:func:`emulator.datapath.track_extremes` counts; the weights' accumulator is folded as each
step starts (and once more at a chunk's end), which counts the same values.
"""
from __future__ import annotations

import collections

import numpy as np
from numba import njit

from emulator.datapath import (C_BRACKET, C_GAMMA, C_POST, C_TRACE, C_USP, C_V, C_WSAT,
                               C_WUNDER, EXTREME_INDEX, NO_HI, NO_LO, State)
from emulator.discretize import Discretized
from emulator.drive import record_rows
from emulator.threads import (default_parallel, in_blocks, n_threads,  # noqa: F401
                              run_threads, trial_blocks)
from emulator.stages_jit import (bracket_cwv_one, bracket_homo_row, bracket_row, error_one,
                                 gamma_one, output_spike_one, pack, post_factor_one,
                                 potential_one, sigmoid_one, traces_row, update_row, usp_row)
from emulator.spikes import SpikeSource, spike_prefixes, spikes_step
from emulator.variables import RECORD_FIELD, RECORD_SHAPES, RECORDABLE, SITE_INDEX, SITE_STREAMS
from fixedpoint.jit import stream_prefix

#: The integer state the kernel updates in place (fields of :class:`emulator.datapath.State`).
KernelState = collections.namedtuple(
    "KernelState", ("trials", "a_m", "a_s", "acc", "gamma", "x", "v", "sigma", "err", "post",
                    "spikes", "counts", "first", "lo", "hi"))
#: Tables and per-afferent vectors of the Discretized record.
KernelTables = collections.namedtuple("KernelTables",
                                      ("homo_mant", "rates_q", "sigma_lut", "gamma_lut"))
#: Recording arrays grouped by shape (same order as the State sources of ``KernelRecords``).
KernelRecords = collections.namedtuple(
    "KernelRecords", ("afferent", "afferent_src", "neuron", "neuron_src", "synapse"))

#: Recordable names of each shape, in :data:`emulator.variables.RECORDABLE` order.
_BY_SHAPE = {kind: tuple(r for r in RECORDABLE if RECORD_SHAPES[r] == shape)
             for kind, shape in (("afferent", ("B", "N")), ("neuron", ("B", "M")),
                                 ("synapse", ("B", "M", "N")))}
assert _BY_SHAPE["synapse"] == ("weights",)   # the kernel records the visible weights

_I_TRACE = SITE_INDEX["trace"]
_I_USP = SITE_INDEX["usp"]
_I_POT = SITE_INDEX["potential"]
_I_HOMO = SITE_INDEX["homo"]
_I_CWV = SITE_INDEX["cw_v"]
_I_HET = SITE_INDEX["hetero"]
_I_POST = SITE_INDEX["post"]
_I_W = SITE_INDEX["weights"]
_I_OUT = SITE_INDEX["student"]
_N_SITES = len(SITE_STREAMS)
# columns of the running extremes (State.lo / State.hi)
_Q_TM = EXTREME_INDEX["trace_m"]
_Q_TS = EXTREME_INDEX["trace_s"]
_Q_X = EXTREME_INDEX["usp"]
_Q_V = EXTREME_INDEX["potential"]
_Q_SIGMA = EXTREME_INDEX["sigma"]
_Q_ERR = EXTREME_INDEX["error"]
_Q_GAMMA = EXTREME_INDEX["gamma_s"]
_Q_POST = EXTREME_INDEX["post"]
_Q_W = EXTREME_INDEX["weights"]


@njit(cache=True, inline="always")
def _add(n, counts, first, which, k):
    # first step = the minimum over trials (trials run one after the other, each in time)
    if n > 0:
        counts[which] += n
        if first[which] < 0 or k < first[which]:
            first[which] = k


@njit(cache=True, inline="always")
def _fold(lo, hi, q, v):
    """Running extremes: ``lo[q] = min(lo[q], v)``, ``hi[q] = max(hi[q], v)``."""
    lo[q] = min(lo[q], v)
    hi[q] = max(hi[q], v)


@njit(cache=True, inline="always")
def _trial_step(k, p, spk, y, b, st, c, tab, homo, w_row, tmp1, tmp2, dw, counts_b, first_b, tb,
                spike_count):
    """One step of trial ``b`` of the datapath (stages 1.-11.), in place, from its input spikes
    ``spk`` (N,) and teacher spikes ``y`` (M,); ``p`` holds the step's stream prefixes of the
    rounding sites and ``homo``, ``w_row``, ``tmp1``, ``tmp2``, ``dw`` are (N,) scratch rows."""
    M = st.acc.shape[1]
    N = st.acc.shape[2]
    w_extra = c.w_extra
    am_row = st.a_m[b]
    as_row = st.a_s[b]
    x_row = st.x[b]
    # 1.-2. traces and USP (shared by the M neurons), the bracket's homosynaptic term
    n_tr = traces_row(am_row, tmp1, c.decay_m, spk, c, p[_I_TRACE], tb, 2)
    n_tr += traces_row(as_row, tmp1, c.decay_s, spk, c, p[_I_TRACE], tb + 1, 2)
    _add(n_tr, counts_b, first_b, C_TRACE, k)
    _add(usp_row(x_row, am_row, as_row, tmp1, c, p[_I_USP], tb), counts_b, first_b, C_USP, k)
    # running extremes of this trial (one pass, which LLVM vectorizes)
    lo = st.lo[b]
    hi = st.hi[b]
    lm, hm, ls, hs, lx, hx = lo[_Q_TM], hi[_Q_TM], lo[_Q_TS], hi[_Q_TS], lo[_Q_X], hi[_Q_X]
    for i in range(N):
        lm = min(lm, am_row[i])
        hm = max(hm, am_row[i])
        ls = min(ls, as_row[i])
        hs = max(hs, as_row[i])
        lx = min(lx, x_row[i])
        hx = max(hx, x_row[i])
    lo[_Q_TM], hi[_Q_TM], lo[_Q_TS], hi[_Q_TS], lo[_Q_X], hi[_Q_X] = lm, hm, ls, hs, lx, hx
    bracket_homo_row(homo, x_row, tab.homo_mant, tmp2, c, p[_I_HOMO], tb)
    for j in range(M):
        acc_row = st.acc[b, j]
        la = lo[_Q_W]        # the accumulator this step starts from (the one after the
        ha = hi[_Q_W]        # chunk's last step: _fold_acc)
        for i in range(N):
            a = acc_row[i]
            la = min(la, a)
            ha = max(ha, a)
            w_row[i] = a >> w_extra
        lo[_Q_W] = la
        hi[_Q_W] = ha
        # 3.-4. V
        vj, n = potential_one(w_row, x_row, c, p[_I_POT], tb + j)
        _add(n, counts_b, first_b, C_V, k)
        st.v[b, j] = vj
        # 5. gamma_s, every epoch
        if k % c.gamma_epoch == 0:
            g, n = gamma_one(w_row, tab.rates_q, tab.gamma_lut, c)
            st.gamma[b, j] = g
            _add(n, counts_b, first_b, C_GAMMA, k)
        # 6.-8. sigma, error, post factor
        sj = sigmoid_one(vj, tab.sigma_lut, c)
        st.sigma[b, j] = sj
        ej = error_one(sj, y[j], c)
        st.err[b, j] = ej
        pj, n = post_factor_one(st.gamma[b, j], sj, ej, c, p[_I_POST], tb + j)
        _add(n, counts_b, first_b, C_POST, k)
        st.post[b, j] = pj
        # 9. bracket
        cwv, n = bracket_cwv_one(vj, c, p[_I_CWV], tb + j)
        n += bracket_row(tmp1, homo, cwv, w_row, c, p[_I_HET], tb + j * N)
        _add(n, counts_b, first_b, C_BRACKET, k)
        # 10. weight update
        n_under, n_sat = update_row(acc_row, pj, tmp1, tmp2, dw, c, p[_I_W], tb + j * N)
        _add(n_under, counts_b, first_b, C_WUNDER, k)
        _add(n_sat, counts_b, first_b, C_WSAT, k)
        # running extremes of the neuron's values (branch-free: cheaper than a test)
        _fold(lo, hi, _Q_V, vj)
        _fold(lo, hi, _Q_SIGMA, sj)
        _fold(lo, hi, _Q_ERR, ej)
        _fold(lo, hi, _Q_GAMMA, st.gamma[b, j])
        _fold(lo, hi, _Q_POST, pj)
        # 11. student spike
        sp = output_spike_one(sj, c, p[_I_OUT], tb + j)
        st.spikes[b, j] = sp
        spike_count[b, j] += sp


@njit(cache=True, inline="always")
def _fold_acc(st, b):
    """Fold trial ``b``'s accumulator into its running extremes (the end of a chunk: each
    step folds the accumulator it starts from)."""
    la = st.lo[b, _Q_W]
    ha = st.hi[b, _Q_W]
    for j in range(st.acc.shape[1]):
        for i in range(st.acc.shape[2]):
            la = min(la, st.acc[b, j, i])
            ha = max(ha, st.acc[b, j, i])
    st.lo[b, _Q_W] = la
    st.hi[b, _Q_W] = ha


@njit(cache=True, inline="always")
def _record_trial(rec, row, b, st, w_extra):
    """Copy trial ``b``'s recordable state to row ``row`` of the ``rec`` arrays."""
    for q in range(len(rec.afferent)):
        rec.afferent[q][row, b] = rec.afferent_src[q][b]
    for q in range(len(rec.neuron)):
        rec.neuron[q][row, b] = rec.neuron_src[q][b]
    for j in range(st.acc.shape[1]):
        for i in range(st.acc.shape[2]):
            rec.synapse[row, b, j, i] = st.acc[b, j, i] >> w_extra


@njit(cache=True, inline="always")
def _site_prefixes(seed, streams, k0, T):
    """(T, sites) per-step keys of the rounding sites' streams."""
    pref = np.empty((T, _N_SITES), np.uint64)
    for t in range(T):
        for q in range(_N_SITES):
            pref[t, q] = stream_prefix(seed, streams[q], k0 + t)
    return pref


def _chunk_impl(X, Y, k0, seed, st, c, tab, rec, record_every, streams, row0, spike_count):
    """Advance the state ``st`` (in place) over X (T, B, N), Y (T, B, M).

    When ``record_every > 0`` the state after every global step k with
    ``(k + 1) % record_every == 0`` is written to the next row of the ``rec`` arrays,
    starting at row ``row0``; returns the next free row.  ``spike_count`` (B, M)
    accumulates the student's output spikes.  Trials are independent: :func:`run_chunk`
    runs blocks of trials on threads (the kernel releases the GIL).
    """
    T, B, N = X.shape
    pref = _site_prefixes(seed, streams, k0, T)
    homo = np.zeros(N, np.int64)
    w_row = np.zeros(N, np.int64)
    tmp1 = np.zeros(N, np.int64)
    tmp2 = np.zeros(N, np.int64)
    dw = np.zeros(N, np.int64)
    for b in range(B):
        tb = np.int64(st.trials[b]) << 32
        for t in range(T):
            k = k0 + t
            _trial_step(k, pref[t], X[t, b], Y[t, b], b, st, c, tab, homo, w_row, tmp1, tmp2,
                        dw, st.counts, st.first, tb, spike_count)
            if record_every > 0 and (k + 1) % record_every == 0:
                _record_trial(rec, row0 + (k + 1) // record_every - k0 // record_every - 1, b,
                              st, c.w_extra)
        _fold_acc(st, b)
    if record_every > 0:
        return row0 + (k0 + T) // record_every - k0 // record_every
    return row0


def _fused_impl(T, k0, sp, seed, st, c, tab, rec, record_every, streams, row0, spike_count,
                teach_count):
    """:func:`_chunk_impl` over the next T steps with the spikes drawn inside the loop.

    Per trial and step, :func:`emulator.spikes.spikes_step` draws the input spikes, updates
    the float64 teacher traces ``sp.am``, ``sp.as_`` (B, N) and draws the teacher spikes, bit
    for bit as :class:`emulator.spikes.SpikeSource` does; then the datapath step runs on them.
    No (T, B, N) array exists.  ``teach_count`` (B, M) accumulates the teacher spikes.
    """
    B, M, N = st.acc.shape
    pref = _site_prefixes(seed, streams, k0, T)
    pref_in, pref_teach = spike_prefixes(seed, k0, T)   # input and teacher stream keys
    homo = np.zeros(N, np.int64)
    w_row = np.zeros(N, np.int64)
    tmp1 = np.zeros(N, np.int64)
    tmp2 = np.zeros(N, np.int64)
    dw = np.zeros(N, np.int64)
    spk = np.zeros(N, np.uint8)
    xf = np.zeros(N, np.float64)
    y = np.zeros(M, np.uint8)
    for b in range(B):
        tb = np.int64(st.trials[b]) << 32
        for t in range(T):
            k = k0 + t
            spikes_step(sp, b, tb, pref_in[t], pref_teach[t], spk, xf, y)
            for j in range(M):
                teach_count[b, j] += y[j]
            _trial_step(k, pref[t], spk, y, b, st, c, tab, homo, w_row, tmp1, tmp2, dw,
                        st.counts, st.first, tb, spike_count)
            if record_every > 0 and (k + 1) % record_every == 0:
                _record_trial(rec, row0 + (k + 1) // record_every - k0 // record_every - 1, b,
                              st, c.w_extra)
        _fold_acc(st, b)
    if record_every > 0:
        return row0 + (k0 + T) // record_every - k0 // record_every
    return row0


#: The compiled kernels.  One compiled function each: parallel runs call the same code on
#: blocks of trials from several threads (``nogil``), so serial and parallel bits agree by
#: construction.  (Before, a ``parallel=True`` twin of the same Python function shared its
#: numba cache entry with the serial one -- the cache is keyed by module and qualname, not
#: by compile flags -- and numba's parfor lowering could not compile the prange loop with
#: the kernel's named tuples at all: ``parallel=True`` ran the serial code.)
run_chunk_kernel = njit(cache=True, nogil=True)(_chunk_impl)
run_fused_kernel = njit(cache=True, nogil=True)(_fused_impl)


def kernel_state(state: State) -> KernelState:
    """The arrays of ``state`` (shared, not copied) as the kernel's structured argument.  A
    State without running extremes (one wrapping Lava Vars) gets fresh ones, which nothing
    reads."""
    if state.lo is None or state.hi is None:
        b, r = state.acc.shape[0], len(EXTREME_INDEX)
        state.lo = np.full((b, r), NO_LO, np.int64)
        state.hi = np.full((b, r), NO_HI, np.int64)
    return KernelState(**{f: getattr(state, f) for f in KernelState._fields})


def _read_only(a: np.ndarray) -> np.ndarray:
    v = np.ascontiguousarray(a, np.int64).view()
    v.flags.writeable = False
    return v


def kernel_tables(d: Discretized) -> KernelTables:
    """The design's tables, all read-only views: the kernel's type then does not depend on
    whether a table was computed or loaded from a deployment (one compiled variant, not
    two)."""
    return KernelTables(*(_read_only(t) for t in (d.homo_mant, d.rates_q, d.sigma_lut,
                                                  d.gamma_lut)))


def kernel_records(state: State, rec_int: dict) -> KernelRecords:
    """Recording arrays ``rec_int[name]`` (n_rec, B, ...) grouped by shape, with the State
    arrays they copy from (derived from :data:`emulator.variables.RECORDABLE`)."""
    return KernelRecords(
        afferent=tuple(rec_int[r] for r in _BY_SHAPE["afferent"]),
        afferent_src=tuple(getattr(state, RECORD_FIELD[r]) for r in _BY_SHAPE["afferent"]),
        neuron=tuple(rec_int[r] for r in _BY_SHAPE["neuron"]),
        neuron_src=tuple(getattr(state, RECORD_FIELD[r]) for r in _BY_SHAPE["neuron"]),
        synapse=rec_int["weights"])


def kernel_args(d: Discretized, state: State, seed: int, record_every: int, rec_int: dict,
                row: int, spike_count: np.ndarray) -> tuple:
    """Arguments of :func:`run_chunk_kernel` after ``(X, Y, k0)``, bound to ``state``.

    The state arrays are passed as they are (the kernel updates them in place), so callers
    that step repeatedly (the Lava process) can bind once and call the kernel per step.
    """
    return (np.uint64(seed), kernel_state(state), pack(d), kernel_tables(d),
            kernel_records(state, rec_int), np.int64(record_every),
            np.array(SITE_STREAMS, np.uint64), np.int64(row), spike_count)


def _block_state(ks: KernelState, b0: int, b1: int) -> KernelState:
    """Trials b0:b1 of ``ks`` (views, updated in place) with counters of their own."""
    n_ctr = ks.counts.shape[0]
    return ks._replace(**{f: getattr(ks, f)[b0:b1] for f in KernelState._fields
                          if f not in ("counts", "first")},
                       counts=np.zeros(n_ctr, np.int64), first=np.full(n_ctr, -1, np.int64))


def _merge_counters(ks: KernelState, parts) -> None:
    """Add the blocks' counters into ``ks``; first step = the minimum over blocks."""
    for p in parts:
        ks.counts[...] += p.counts
        hit = (p.first >= 0) & ((ks.first < 0) | (p.first < ks.first))
        ks.first[hit] = p.first[hit]


def _in_blocks(kernel, lead: tuple, d: Discretized, state: State, seed: int, record_every: int,
               rec_int: dict, row: int, spike_count: np.ndarray, tail: tuple, slicers: tuple,
               n_steps: int, parallel: bool) -> int:
    """Call ``kernel(*lead_block, *kernel_args, *tail_block)`` per block of trials.

    ``slicers`` holds, for every ``lead`` and ``tail`` argument, a function
    ``(arg, b0, b1) -> block argument``.  Blocks record into chunk-local arrays that are
    copied into ``rec_int`` afterwards (a trial slice of the record is not contiguous).
    """
    args = kernel_args(d, state, seed, record_every, rec_int, row, spike_count)
    seed_u, ks, c, tab, _, every, streams, _, _ = args
    k0 = state.step
    r0, r1 = record_rows(k0, n_steps, record_every)
    n_rows = r1 - r0
    names = tuple(rec_int)

    def call(b0, b1, bufs):
        if bufs is None:                         # one block: the whole state and records
            return int(kernel(*lead, *args, *tail))
        kb = _block_state(ks, b0, b1)
        st_b = State(**{f: getattr(kb, f) for f in KernelState._fields}, step=k0)
        rb = kernel_records(st_b, dict(zip(names, bufs)))
        lb = tuple(f(a, b0, b1) for f, a in zip(slicers[:len(lead)], lead))
        tb = tuple(f(a, b0, b1) for f, a in zip(slicers[len(lead):], tail))
        kernel(*lb, seed_u, kb, c, tab, rb, every, streams, np.int64(0), spike_count[b0:b1], *tb)
        return kb
    parts = in_blocks(state.acc.shape[0], parallel, call,
                      tuple((rec_int[name], 1) for name in names), (row, row + n_rows))
    if len(parts) == 1 and not isinstance(parts[0], KernelState):
        return parts[0]
    _merge_counters(ks, parts)
    return row + n_rows


def _whole(a, b0, b1):
    return a


def _trial_axis1(a, b0, b1):
    return np.ascontiguousarray(a[:, b0:b1])


def run_chunk(d: Discretized, state: State, X, Y, seed: int, record_every: int, rec_int: dict,
              row: int, spike_count: np.ndarray, parallel: bool = False) -> int:
    """Advance ``state`` over one chunk with the fused kernel; same contract as the numpy
    loop in :func:`emulator.run`.  Returns the next free recording row.

    ``parallel=True`` runs blocks of trials on :func:`n_threads` threads (same bits).
    """
    k0 = state.step
    X = np.ascontiguousarray(X, np.uint8)
    Y = np.ascontiguousarray(Y, np.uint8)
    row = _in_blocks(run_chunk_kernel, (X, Y, np.int64(k0)), d, state, seed, record_every,
                     rec_int, row, spike_count, (), (_trial_axis1, _trial_axis1, _whole),
                     X.shape[0], parallel)
    state.step = k0 + X.shape[0]
    return row


def _spike_block(sp, b0, b1):
    return sp._replace(fw=sp.fw[b0:b1], am=sp.am[b0:b1], as_=sp.as_[b0:b1])


def run_fused(d: Discretized, state: State, src: SpikeSource, n_steps: int, seed: int,
              record_every: int, rec_int: dict, row: int, spike_count: np.ndarray,
              teach_count: np.ndarray, parallel: bool = False) -> int:
    """:func:`run_chunk` over the next ``n_steps`` steps of ``src``, drawing the spikes inside
    the kernel (no spike arrays); ``src``'s traces and step advance as if ``src.next(n_steps)``
    had been called, and ``teach_count`` (B, M) accumulates the teacher spikes.  Returns the
    next free recording row.  ``src`` must use the same seed and trials as ``state``.
    """
    k0 = state.step
    if src.k != k0:
        raise ValueError(f"spike source at step {src.k}, datapath at step {k0}")
    if int(src.seed) != int(seed) or not np.array_equal(src.trials, state.trials):
        raise ValueError("spike source and datapath state differ in seed or trials")
    lead = (np.int64(n_steps), np.int64(k0), src.kernel_args())
    row = _in_blocks(run_fused_kernel, lead, d, state, seed, record_every, rec_int, row, spike_count,
                     (teach_count,), (_whole, _whole, _spike_block,
                                      lambda a, b0, b1: a[b0:b1]), n_steps, parallel)
    state.step = k0 + int(n_steps)
    src.advance(n_steps)
    return row

