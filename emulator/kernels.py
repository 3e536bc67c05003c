"""Fused numba backend of the integer datapath: the stages of :mod:`emulator.stages` in their
numba twins (:mod:`emulator.stages_jit`), inlined into one compiled loop over (steps,
trials, neurons, afferents).

It must stay bit-identical to the numpy step (``tests/test_emulator_backends.py``,
``tests/test_stages.py`` and the golden hashes of ``tests/test_golden.py``).  The state
travels as one :class:`KernelState` named tuple, the scalars as one record
(:func:`emulator.stages_jit.pack`), the tables as :class:`KernelTables` and the recording
arrays as :class:`KernelRecords`, all derived from :mod:`emulator.variables`.
"""
from __future__ import annotations

import collections

import numpy as np
from numba import njit, prange

from emulator.datapath import (C_BRACKET, C_GAMMA, C_POST, C_TRACE, C_USP, C_V, C_WSAT,
                               C_WUNDER, State)
from emulator.discretize import Discretized
from emulator.stages_jit import (bracket_cwv_one, bracket_homo_row, bracket_row, error_one,
                                 gamma_one, output_spike_one, pack, post_factor_one,
                                 potential_one, sigmoid_one, traces_row, update_row, usp_row)
from emulator.variables import RECORD_FIELD, RECORD_SHAPES, RECORDABLE, SITE_INDEX, SITE_STREAMS
from fixedpoint.jit import stream_prefix

#: The integer state the kernel updates in place (fields of :class:`emulator.datapath.State`).
KernelState = collections.namedtuple(
    "KernelState", ("trials", "a_m", "a_s", "acc", "gamma", "x", "v", "sigma", "err", "post",
                    "spikes", "counts", "first"))
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


@njit(cache=True, inline="always")
def _add(n, counts, first, which, k):
    if n > 0:
        counts[which] += n
        if first[which] < 0:
            first[which] = k


def _chunk_impl(X, Y, k0, seed, st, c, tab, rec, record_every, streams, row0, spike_count):
    """Advance the state ``st`` (in place) over X (T, B, N), Y (T, B, M).

    When ``record_every > 0`` the state after every global step k with
    ``(k + 1) % record_every == 0`` is written to the next row of the ``rec`` arrays,
    starting at row ``row0``; returns the next free row.  ``spike_count`` (B, M)
    accumulates the student's output spikes.

    Trials are independent, so the trial loop is a ``prange``: compiled with
    ``parallel=True`` they run on all cores.  Each trial counts its events in its own row
    of a (B, n_counters) table, reduced at the end (first step = the minimum over trials),
    so the counters do not depend on the thread schedule.
    """
    T, B, N = X.shape
    M = Y.shape[2]
    n_ctr = st.counts.shape[0]
    cnt_all = np.zeros((B, n_ctr), np.int64)
    fst_all = np.full((B, n_ctr), -1, np.int64)
    pref = np.empty((T, _N_SITES), np.uint64)      # per-step keys of the sites' streams
    for t in range(T):
        for q in range(_N_SITES):
            pref[t, q] = stream_prefix(seed, streams[q], k0 + t)
    w_extra = c.w_extra
    for b in prange(B):
        homo = np.zeros(N, np.int64)
        w_row = np.zeros(N, np.int64)
        tmp1 = np.zeros(N, np.int64)
        tmp2 = np.zeros(N, np.int64)
        dw = np.zeros(N, np.int64)
        counts_b = cnt_all[b]
        first_b = fst_all[b]
        tb = np.int64(st.trials[b]) << 32
        am_row = st.a_m[b]
        as_row = st.a_s[b]
        x_row = st.x[b]
        for t in range(T):
            k = k0 + t
            p = pref[t]
            # 1.-2. traces and USP (shared by the M neurons), the bracket's homosynaptic term
            n_tr = traces_row(am_row, tmp1, c.decay_m, X[t, b], c, p[_I_TRACE], tb, 2)
            n_tr += traces_row(as_row, tmp1, c.decay_s, X[t, b], c, p[_I_TRACE], tb + 1, 2)
            _add(n_tr, counts_b, first_b, C_TRACE, k)
            _add(usp_row(x_row, am_row, as_row, tmp1, c, p[_I_USP], tb), counts_b, first_b,
                 C_USP, k)
            bracket_homo_row(homo, x_row, tab.homo_mant, tmp2, c, p[_I_HOMO], tb)
            for j in range(M):
                acc_row = st.acc[b, j]
                for i in range(N):
                    w_row[i] = acc_row[i] >> w_extra
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
                ej = error_one(sj, Y[t, b, j], c)
                st.err[b, j] = ej
                pj, n = post_factor_one(st.gamma[b, j], sj, ej, c, p[_I_POST], tb + j)
                _add(n, counts_b, first_b, C_POST, k)
                st.post[b, j] = pj
                # 9. bracket
                cwv, n = bracket_cwv_one(vj, c, p[_I_CWV], tb + j)
                n += bracket_row(tmp1, homo, cwv, w_row, c, p[_I_HET], tb + j * N)
                _add(n, counts_b, first_b, C_BRACKET, k)
                # 10. weight update
                n_under, n_sat = update_row(acc_row, pj, tmp1, tmp2, dw, c, p[_I_W],
                                            tb + j * N)
                _add(n_under, counts_b, first_b, C_WUNDER, k)
                _add(n_sat, counts_b, first_b, C_WSAT, k)
                # 11. student spike
                sp = output_spike_one(sj, c, p[_I_OUT], tb + j)
                st.spikes[b, j] = sp
                spike_count[b, j] += sp
            if record_every > 0 and (k + 1) % record_every == 0:
                row = row0 + (k + 1) // record_every - k0 // record_every - 1
                for q in range(len(rec.afferent)):
                    rec.afferent[q][row, b] = rec.afferent_src[q][b]
                for q in range(len(rec.neuron)):
                    rec.neuron[q][row, b] = rec.neuron_src[q][b]
                for j in range(M):
                    for i in range(N):
                        rec.synapse[row, b, j, i] = st.acc[b, j, i] >> w_extra
    for b in range(B):                          # reduce the per-trial counters
        for q in range(n_ctr):
            st.counts[q] += cnt_all[b, q]
            f = fst_all[b, q]
            if f >= 0 and (st.first[q] < 0 or f < st.first[q]):
                st.first[q] = f
    if record_every > 0:
        return row0 + (k0 + T) // record_every - k0 // record_every
    return row0


run_chunk_kernel = njit(cache=True)(_chunk_impl)
run_chunk_kernel_parallel = njit(cache=True, parallel=True)(_chunk_impl)


def kernel_state(state: State) -> KernelState:
    """The arrays of ``state`` (shared, not copied) as the kernel's structured argument."""
    return KernelState(**{f: getattr(state, f) for f in KernelState._fields})


def kernel_tables(d: Discretized) -> KernelTables:
    return KernelTables(d.homo_mant, d.rates_q, d.sigma_lut, d.gamma_lut)


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


def run_chunk(d: Discretized, state: State, X, Y, seed: int, record_every: int, rec_int: dict,
              row: int, spike_count: np.ndarray, parallel: bool = False) -> int:
    """Advance ``state`` over one chunk with the fused kernel; same contract as the numpy
    loop in :func:`emulator.run`.  Returns the next free recording row.

    ``parallel=True`` spreads the trials over numba's threads.  It is opt-in: starting
    numba's thread pool fixes the process's multiprocessing start method, after which
    libraries that set it themselves at import (Lava 0.10 does) fail to import.
    """
    k0 = state.step
    kernel = run_chunk_kernel_parallel if parallel and X.shape[1] > 1 else run_chunk_kernel
    row = kernel(
        np.ascontiguousarray(X, np.uint8), np.ascontiguousarray(Y, np.uint8), np.int64(k0),
        *kernel_args(d, state, seed, record_every, rec_int, row, spike_count))
    state.step = k0 + X.shape[0]
    return int(row)
