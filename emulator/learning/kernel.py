"""The learning engine's fused numba kernel: :func:`.neuron.neuron_step` +
:func:`.lava_replica.synapse_step`, element by element, in one compiled loop over trials and
steps (:func:`chunk_kernel` on spike arrays, :func:`fused_kernel` drawing the spikes inside).

It must stay bit-identical to :mod:`.neuron` and :mod:`.lava_replica`
(``tests/lava_procs/test_lava_path2.py`` compares the two backends,
``tests/emulator/test_golden.py`` pins the bits).  Every width and format comes from the
design's ``engine`` / ``neuron`` records, packed by :func:`pack` into the constant array
``kc`` (layout: :mod:`.kernel_layout`).  Lava has no counterpart: its ``LearningDense`` runs
in Python (see ``lava/magma/core/learning/learning_rule_applier.py``).

One step is :func:`.kernel_step.le_step` (the learning neuron, Dense, the spiking and the
learning phase), inlined into both kernels; its helpers are in :mod:`.kernel_ops` (words,
extremes) and :mod:`.kernel_products` (trace decay, sum of products, rounding).  This
module holds the state's layout, the trial loops and their split over threads.

numba's cache checks only the source file of the cached function: after editing a module
the kernels inline (``kernel_step.py``, ``kernel_ops.py``'s inlined helpers,
``fixedpoint.jit``, ``emulator.spikes``) delete the ``*.nbi`` / ``*.nbc`` files of
``emulator/learning/__pycache__``.
"""
from __future__ import annotations

import collections

import numpy as np
from numba import njit

from fixedpoint.jit import stream_prefix
from fixedpoint.recip import recip_table

from emulator.spikes import spike_prefixes, spikes_step
from emulator.threads import in_blocks

from .constants import STREAM_EVENT, STREAM_VQ
from .extremes import EX_X1
from .kernel_layout import KC_NAMES, KC_T_EPOCH, VAR_CODE
from .kernel_ops import ext_row
from .kernel_step import le_step
from .rule_design import Design, u_exponent


def pack(d: Design, products):
    """The design's integers, formats and the product tables, as arrays for :func:`run_chunk`.

    Returns
    -------
    kc : (N_KC,) int64
        Constants, indexed by ``KC_*`` (design integers, ``d.neuron``, ``d.engine``).
    ptab : (P, 8) int64
        Per product (the dw products, then the dd products): dependency (1 = y0, 0 = u),
        mantissa, exponent, right shift, number of factors, then the factors' variable codes
        (``VAR_CODE``).
    pconst : (P, 3) int64
        The constant added to each factor (``(y3 - 64)`` -> -64).
    """
    nf, e = d.neuron, d.engine
    allp = tuple(products) + tuple(d.dd_products)
    ks = {u_exponent(p.dep) for p in allp} - {None}
    if len(ks) > 1:
        raise ValueError("one u<k> per rule set (as Lava)")
    vals = dict(
        DM=d.dm, DS=d.ds, VK_MANT=d.vk_mant, VK_SH=d.vk_shift, PHIDT_MANT=d.phidt_mant,
        PHIDT_SH=d.phidt_shift, GINV_MANT=d.ginv_mant, GINV_SH=d.ginv_shift,
        K_MANT=d.k_mant, K_SH=d.k_shift, EK_FRAC=d.ek_frac, VQ_MANT=d.vq_mant,
        VQ_SH=d.vq_shift, KX=d.k_x, WEXP=d.weight_exp, WORD_BITS=nf.word_bits,
        F_A=nf.filter_frac, F_D=nf.decay_frac, F_V=nf.v_frac, V_BITS=nf.v_bits,
        F_S=nf.sigma_frac, SIG_SPAN=nf.sigma_span_mv, SIG_NODE_FRAC=nf.sigma_node_frac,
        SIG_INTERP=int(bool(nf.sigma_interpolate)), F_E=nf.error_frac, F_H=nf.hbar_frac,
        H_TAU_SHIFT=nf.hbar_tau_shift, GAMMA_EVERY=nf.gamma_every, F_G=nf.gamma_frac,
        G_BITS=nf.gamma_bits, F_P=nf.prob_frac, Y_EVENT=d.y_event, Y_OFFSET=d.y_offset,
        TRACE_BITS=e.trace_bits, SYN_BITS=e.synaptic_bits, ACC_BITS=e.accumulator_bits,
        ACC_SHIFT=e.acc_shift, T_EPOCH=e.t_epoch,
        W_PER_SYN=int(e.weight_rounding == "per_synapse"),
        T_PER_SYN=int(e.trace_rounding == "per_synapse"), ALL_Y0=int(bool(d.all_y0)),
        U_K=ks.pop() if ks else 0, N_DW=len(products), Y2_CONST=d.y2_const,
        GRADED=int(d.encoding == "graded"), LEVELS=d.levels, UNIT_RATIO=d.unit_ratio,
        Y_UNIT=d.y_unit, USE_GAMMA=int(d.mapped_rule == "approx"), CARRY_BITS=nf.carry_bits)
    kc = np.array([vals.pop(n) for n in KC_NAMES], np.int64)
    if vals:
        raise ValueError(f"not in the kc layout (kernel_layout.KC_NAMES): {sorted(vals)}")
    ptab = np.zeros((len(allp), 8), np.int64)    # dep (1 = y0), mant, exp, shift, nf, vars
    pconst = np.zeros((len(allp), 3), np.int64)
    for j, pr in enumerate(allp):
        if len(pr.factors) > 3 or pr.dep == "x0":
            raise ValueError("the numba kernel supports u/y0 products of <= 3 factors")
        ptab[j, :5] = (1 if pr.dep == "y0" else 0, pr.mant, pr.exp, pr.shift, len(pr.factors))
        for f, (var, const) in enumerate(pr.factors):
            ptab[j, 5 + f] = VAR_CODE[var]
            pconst[j, f] = const
    return kc, ptab, pconst


#: The engine state the kernels update in place: :class:`.lava_replica.SynapseState` (``W``
#: ... ``scounts``) and :class:`.neuron.NeuronState` (``a_m`` ... ``sent``), in their formats;
#: ``events`` (B, M, 2) counts the positive / negative events sent.  ``counts`` and
#: ``scounts`` are totals over the trials (a parallel run gives each block its own).
#: ``nlast`` (4, B, M) holds the neuron's ``post``, ``amount``, ``coded`` and ``vq`` (rows
#: :data:`NLAST_ROWS`); ``ext`` (2, B, N_EXTREMES) the running minima and maxima of
#: :mod:`.extremes` (integer codes).  Both have the trials on axis 1.
LEKernelState = collections.namedtuple(
    "LEKernelState", ("W", "xtr", "a_buff", "tx", "ty", "yr", "dtag", "scounts", "a_m", "a_s",
                      "hbar", "gamma", "vlast", "slast", "elast", "plast", "counts", "pend",
                      "sent", "carry", "events", "nlast", "ext"))
#: rows of ``LEKernelState.nlast``: the :class:`.neuron.NeuronState` fields they are
NLAST_ROWS = ("post", "amount", "coded", "vq")
#: The design as the kernels read it: :func:`pack`'s arrays, the sigmoid table, the tags and
#: ``exp(-1/tau)`` of the x traces (2,) and of the y traces (scalar).
LEKernelConst = collections.namedtuple(
    "LEKernelConst", ("kc", "lut", "ptab", "pconst", "tags", "dec_x", "dec_y", "rtab"))
#: Per-thread scratch of one trial step; ``act`` (P,) lists the products :func:`active`,
#: ``spiked`` (N,) the afferents that spiked (one-step epochs: the traces' extremes).
LEScratch = collections.namedtuple(
    "LEScratch", ("bap", "y1v", "y2v", "y3v", "xh", "yh", "vy0", "vu", "act", "accw", "accd",
                  "satw", "satd", "tmp", "spiked"))


@njit(cache=True, inline="always")
def _scratch(c, N, M):
    te = c.kc[KC_T_EPOCH]
    return LEScratch(np.zeros(M, np.int64), np.zeros(M, np.int64), np.zeros(M, np.int64),
                     np.zeros(M, np.int64), np.zeros((te + 1, 2, N), np.int64),
                     np.zeros((te + 1, 3, M), np.int64), np.zeros(8, np.int64),
                     np.zeros(8, np.int64), np.zeros(c.ptab.shape[0], np.int64),
                     np.zeros(N, np.int64), np.zeros(N, np.int64), np.zeros(N, np.int64),
                     np.zeros(N, np.int64), np.zeros(N, np.int64), np.zeros(N, np.int64))


@njit(cache=True, inline="always")
def _event_prefixes(seed, k0, T):
    pe = np.empty(T, np.uint64)
    pv = np.empty(T, np.uint64)
    for t in range(T):
        pe[t] = stream_prefix(seed, STREAM_EVENT, k0 + t)
        pv[t] = stream_prefix(seed, STREAM_VQ, k0 + t)
    return pe, pv


@njit(cache=True)
def _traces_ext(st, b, n_steps):
    """The traces of trial ``b`` as stored after a chunk of ``n_steps`` steps (if any), folded
    into the running extremes (with those at the impulses, :func:`impulse_ext`, the extremes
    over every step)."""
    if n_steps > 0:
        for jj in range(2):
            ext_row(st.ext[0], st.ext[1], b, EX_X1 + jj, st.xtr[b, jj])


def _chunk_impl(c, X, Y, rx, ry, rw, k0, seed, trials, st, rec_every, rec, row0):
    """Steps ``k0 .. k0 + n - 1`` of neuron + LearningDense on ``st``, in place; returns the
    next free row of ``rec``.

    ``X``, ``Y`` (n, B, N) / (n, B, M): input and teacher spikes; ``rx``, ``ry`` (n, B) and
    ``rw`` (n,): Lava's random numbers (:class:`.lava_replica.LavaRandoms`).  After every
    global step k with ``(k + 1) % rec_every == 0`` (0: never) the trial's ``W`` goes to the
    next row of ``rec`` (n_rec, B, M, N), starting at ``row0``.  Trials are independent and
    run one after the other (each in time), so blocks of trials can run on threads.
    """
    n, B, N = X.shape
    M = st.W.shape[1]
    pe, pv = _event_prefixes(seed, k0, n)
    sc = _scratch(c, N, M)
    for b in range(B):
        trial = np.int64(trials[b])
        for t in range(n):
            k = k0 + t
            le_step(k, b, X[t, b], Y[t, b], rx[t, b], ry[t, b], rw[t], pe[t], pv[t], seed,
                     trial, c, st, sc)
            if rec_every > 0 and (k + 1) % rec_every == 0:
                rec[row0 + (k + 1) // rec_every - k0 // rec_every - 1, b] = st.W[b]
        _traces_ext(st, b, n)
    if rec_every > 0:
        return row0 + (k0 + n) // rec_every - k0 // rec_every
    return row0


def _fused_impl(c, sp, T, rx, ry, rw, k0, seed, trials, st, rec_every, rec, row0, teach):
    """:func:`_chunk_impl` over the next ``T`` steps with the input and teacher spikes drawn
    inside the loop (:func:`emulator.spikes.spikes_step`, bit for bit as
    :class:`emulator.spikes.SpikeSource`; ``sp`` its kernel arguments, traces updated in
    place); no (T, B, N) array exists.  ``teach`` (B, M) accumulates the teacher spikes."""
    B, M, N = st.W.shape
    pe, pv = _event_prefixes(seed, k0, T)
    pin, pteach = spike_prefixes(seed, k0, T)
    sc = _scratch(c, N, M)
    spk = np.zeros(N, np.uint8)
    xf = np.zeros(N, np.float64)
    y = np.zeros(M, np.uint8)
    for b in range(B):
        trial = np.int64(trials[b])
        for t in range(T):
            k = k0 + t
            spikes_step(sp, b, trial << 32, pin[t], pteach[t], spk, xf, y)
            for m in range(M):
                teach[b, m] += y[m]
            le_step(k, b, spk, y, rx[t, b], ry[t, b], rw[t], pe[t], pv[t], seed, trial, c,
                     st, sc)
            if rec_every > 0 and (k + 1) % rec_every == 0:
                rec[row0 + (k + 1) // rec_every - k0 // rec_every - 1, b] = st.W[b]
        _traces_ext(st, b, T)
    if rec_every > 0:
        return row0 + (k0 + T) // rec_every - k0 // rec_every
    return row0


#: One compiled function each, ``nogil``: a parallel run calls the same code on blocks of
#: trials from several threads (as :mod:`emulator.kernels`), so serial and parallel bits agree
#: by construction and share one cache entry legitimately.
chunk_kernel = njit(cache=True, nogil=True)(_chunk_impl)
fused_kernel = njit(cache=True, nogil=True)(_fused_impl)


def kernel_const(d: Design, products) -> LEKernelConst:
    kc, ptab, pconst = pack(d, products)
    dec_x = np.exp(-1 / np.array([[d.x1_tau], [d.x2_tau]]))[:, 0]
    dec_y = float(np.exp(-1 / np.array([[d.engine.y_tau]]))[0, 0])
    return LEKernelConst(kc, np.asarray(d.sigma_lut, np.int64), ptab, pconst,
                         np.asarray(d.tags, np.int64), dec_x, dec_y,
                         recip_table(d.neuron.word_bits))


def _block(st: LEKernelState, b0: int, b1: int) -> LEKernelState:
    """Trials b0:b1 of ``st`` with counters of their own: views (updated in place) of the
    arrays with the trials on axis 0; C-contiguous copies of ``nlast`` and ``ext`` (trials on
    axis 1), which :func:`run_blocks` copies back, so that the kernel sees the same array
    layouts as in a serial run (one compiled variant, not two)."""
    return LEKernelState(**{f: (np.zeros_like(a) if f in ("counts", "scounts") else
                                np.ascontiguousarray(a[:, b0:b1]) if f in ("nlast", "ext")
                                else a[b0:b1])
                            for f, a in st._asdict().items()})


def run_blocks(st: LEKernelState, rec: np.ndarray, row: int, n_steps: int, k0: int,
               rec_every: int, parallel: bool, call) -> int:
    """Run ``call(block_state, b0, b1, block_rec, first_row)`` on the blocks of trials of
    :func:`emulator.threads.in_blocks` (on threads when ``parallel``); sums the blocks'
    counters into ``st`` (their records are copied into ``rec`` from ``row``).  Returns the
    next free row."""
    B = st.W.shape[0]
    n_rows = (k0 + n_steps) // rec_every - k0 // rec_every if rec_every > 0 else 0

    def block(b0, b1, bufs):
        if bufs is None:                       # one block: the state and records themselves
            return int(call(st, 0, B, rec, row))
        sb = _block(st, b0, b1)
        call(sb, b0, b1, bufs[0], 0)
        return sb, b0, b1
    parts = in_blocks(B, parallel, block, ((rec, 1),), (row, row + n_rows))
    if len(parts) == 1 and not isinstance(parts[0], tuple):
        return parts[0]
    for sb, b0, b1 in parts:
        st.counts[...] += sb.counts
        st.scounts[...] += sb.scounts
        st.nlast[:, b0:b1] = sb.nlast
        st.ext[:, b0:b1] = sb.ext
    return row + n_rows


def run_chunk(c: LEKernelConst, st: LEKernelState, X, Y, rx, ry, rw, k0, seed, trials,
              rec_every, rec, row, parallel: bool = False) -> int:
    """:func:`chunk_kernel` on blocks of trials (see :func:`run_blocks`)."""
    X = np.ascontiguousarray(X, np.uint8)
    Y = np.ascontiguousarray(Y, np.uint8)

    def call(sb, b0, b1, rb, r0):
        return chunk_kernel(c, np.ascontiguousarray(X[:, b0:b1]),
                            np.ascontiguousarray(Y[:, b0:b1]), np.ascontiguousarray(rx[:, b0:b1]),
                            np.ascontiguousarray(ry[:, b0:b1]), rw, np.int64(k0), np.uint64(seed),
                            trials[b0:b1], sb, np.int64(rec_every), rb, np.int64(r0))
    return run_blocks(st, rec, row, X.shape[0], k0, rec_every, parallel, call)


def run_fused(c: LEKernelConst, st: LEKernelState, sp, n_steps, rx, ry, rw, k0, seed, trials,
              rec_every, rec, row, teach, parallel: bool = False) -> int:
    """:func:`fused_kernel` on blocks of trials; ``sp`` = ``SpikeSource.kernel_args()``."""
    def call(sb, b0, b1, rb, r0):
        spb = sp._replace(fw=sp.fw[b0:b1], am=sp.am[b0:b1], as_=sp.as_[b0:b1])
        return fused_kernel(c, spb, np.int64(n_steps), np.ascontiguousarray(rx[:, b0:b1]),
                            np.ascontiguousarray(ry[:, b0:b1]), rw, np.int64(k0),
                            np.uint64(seed), trials[b0:b1], sb, np.int64(rec_every), rb,
                            np.int64(r0), teach[b0:b1])
    return run_blocks(st, rec, row, n_steps, k0, rec_every, parallel, call)
