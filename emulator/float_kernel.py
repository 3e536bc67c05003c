"""Compiled float64 Euler loop of the reference rules (:class:`emulator.reference.Rule`'s
numba twin): :func:`run_chunk` steps the weights on given USPs and teacher counts,
:func:`run_fused` draws the spikes inside the loop (bit for bit as
:class:`emulator.spikes.SpikeSource`); both record the neuron's variables at the recorded steps
and fold every variable into its trial's running extremes.  Same arithmetic as
:class:`emulator.reference.Rule` up to summation order (~1e-13 relative).
"""
from __future__ import annotations

import math

import numba
import numpy as np

from .rule_math import g_matrix_scalar, moments_scalar, sig_pair
from .spikes import SpikeSource, spike_prefixes, spikes_step
from .task import Attenuation, Sinh
from .drive import record_rows
from .threads import in_blocks, trial_blocks

__all__ = ["NEURON_VARS", "AFFERENT_VARS", "EXTREME_VARS", "new_extremes", "run_chunk",
           "run_fused", "compiled_parametrization"]

#: Per-neuron variables recorded by :func:`run_chunk`, in the order of its ``rec_neuron`` axis 0.
NEURON_VARS = ("potential", "sigma", "error", "gamma_s", "post")
#: Per-afferent variables recorded by :func:`run_fused`, in the order of its ``rec_aff`` axis 0.
AFFERENT_VARS = ("trace_m", "trace_s", "usp")
#: Columns of the running extremes ``ext`` (K, 2, len) of :func:`run_chunk` / :func:`run_fused`
#: (the integer datapath's recordable variables, in its order).
EXTREME_VARS = AFFERENT_VARS + NEURON_VARS + ("weights",)
_E_TM, _E_TS, _E_USP, _E_V, _E_SIGMA, _E_ERR, _E_GAMMA, _E_POST, _E_W = range(len(EXTREME_VARS))


def new_extremes(K: int) -> np.ndarray:
    """Running extremes of K trials before any step: ``ext[:, 0]`` = +inf (min),
    ``ext[:, 1]`` = -inf (max), shape (K, 2, len(EXTREME_VARS))."""
    ext = np.empty((K, 2, len(EXTREME_VARS)))
    ext[:, 0] = np.inf
    ext[:, 1] = -np.inf
    return ext


@numba.njit(cache=True, inline="always")
def _fold(lo, hi, q, v):
    """Running extremes ``lo[q]``, ``hi[q]`` (branch-free)."""
    a = lo[q]
    lo[q] = v if v < a else a
    b = hi[q]
    hi[q] = v if v > b else b


@numba.njit(cache=True, inline="always")
def _trial_step(W, k, xk, yk, r, ceps_over_r, q, ceps, beta, theta, phidt, A, c_u, c_w, eta,
                rule, fkind, alpha, wscale, ws, fp, rec, row, rec_w, rec_neuron, ext):
    """One Euler step of trial ``k``: USPs ``xk`` (N,) [mV], teacher counts ``yk`` (M,).
    With ``rec``, the weights after the update go to ``rec_w[row, k]`` and the
    :data:`NEURON_VARS` at the weights before it to ``rec_neuron[:, row, k]`` (when those
    arrays are not empty).  With ``ext`` (not None) every step folds the USPs, the neuron
    values and the weights it starts from into the running extremes ``ext[k, 0]`` (min) and
    ``ext[k, 1]`` (max), columns :data:`EXTREME_VARS` (gamma_s and post only for the
    natural-gradient rules; the weights after a chunk's last step: :func:`_fold_weights`).
    ``ext`` None compiles without any of it."""
    N = xk.shape[0]
    M = W.shape[1]
    keep_w = rec_w.shape[0] > 0
    keep_neuron = rec_neuron.shape[1] > 0
    S = 0.0
    lx = hx = lw = hw = 0.0
    if ext is not None:
        lx, hx = ext[k, 0, _E_USP], ext[k, 1, _E_USP]
        lw, hw = ext[k, 0, _E_W], ext[k, 1, _E_W]
    for i in range(N):
        S += xk[i]
        if ext is not None:     # beside the sum's dependency chain: free
            v = xk[i]
            lx = v if v < lx else lx
            hx = v if v > hx else hx
    for j in range(M):
        V = 0.0
        mm = 0.0
        vv = 0.0
        for i in range(N):
            w = W[k, j, i]
            if ext is not None:
                lw = w if w < lw else lw
                hw = w if w > hw else hw
            if fkind == 0:
                ws[i] = w
                fp[i] = 1.0
            elif fkind == 1:
                ws[i] = alpha[i] * w
                fp[i] = alpha[i]
            else:
                ws[i] = wscale * math.sinh(w / wscale)
                fp[i] = math.cosh(w / wscale)
            V += ws[i] * xk[i]
            # (m, v) as rule_math.membrane_stats_row, fused into this pass: a second pass
            # over the synapses costs the approximate rule 3-5 % (same bits)
            mm += ws[i] * r[i]
            vv += ws[i] * ws[i] * r[i]
        vv /= ceps
        s, c = sig_pair(beta * (V - theta))
        err = float(yk[j]) - phidt * s
        ef = eta * c * err
        I1 = 1.0
        gu = 0.0
        gw = 0.0
        if rule == 1:
            I1, c2, c3 = moments_scalar(mm, vv, beta, theta, A, 3)
            g1, g2, g3, g4 = g_matrix_scalar(I1, c2, c3, mm, vv, q)
            gu = -ceps * (ceps * S * g1 + V * g3)
            gw = ceps * S * g2 + V * g4
        elif rule == 2 or (rec and keep_neuron):
            I1, _c2, _c3 = moments_scalar(mm, vv, beta, theta, A, 1)
            gu = ceps * c_u
            gw = c_w * V
        if rec and keep_neuron:     # values of step k at the weights before its update
            rec_neuron[0, row, k, j] = V
            rec_neuron[1, row, k, j] = s
            rec_neuron[2, row, k, j] = err
            rec_neuron[3, row, k, j] = 1.0 / I1
            rec_neuron[4, row, k, j] = ef / I1
        if ext is not None:
            lo = ext[k, 0]
            hi = ext[k, 1]
            _fold(lo, hi, _E_V, V)
            _fold(lo, hi, _E_SIGMA, s)
            _fold(lo, hi, _E_ERR, err)
            if rule != 0:           # the Euclidean rule computes no gamma_s
                _fold(lo, hi, _E_GAMMA, 1.0 / I1)
                _fold(lo, hi, _E_POST, ef / I1)
        if rule == 0:
            for i in range(N):
                W[k, j, i] += ef * fp[i] * xk[i]
        else:
            ef = ef / I1
            for i in range(N):
                W[k, j, i] += ef * (ceps_over_r[i] * xk[i] - gu + gw * ws[i]) / fp[i]
        if rec and keep_w:
            for i in range(N):
                rec_w[row, k, j, i] = W[k, j, i]
    if ext is not None:
        ext[k, 0, _E_USP], ext[k, 1, _E_USP] = lx, hx
        ext[k, 0, _E_W], ext[k, 1, _E_W] = lw, hw


@numba.njit(cache=True, inline="always")
def _fold_weights(W, k, ext):
    """Fold trial ``k``'s current weights into its running extremes (at the end of a chunk:
    each step folds the weights it starts from)."""
    if ext is not None:
        lw, hw = ext[k, 0, _E_W], ext[k, 1, _E_W]
        for j in range(W.shape[1]):
            for i in range(W.shape[2]):
                w = W[k, j, i]
                lw = w if w < lw else lw
                hw = w if w > hw else hw
        ext[k, 0, _E_W], ext[k, 1, _E_W] = lw, hw


@numba.njit(cache=True, nogil=True)
def _chunk_kernel(W, x, y, r, ceps_over_r, q, ceps, beta, theta, phidt, A, c_u, c_w, eta, rule,
                  fkind, alpha, wscale, ws, fp, k0, record_every, rec_w, rec_neuron, ext):
    """Body of :func:`run_chunk` (arguments as there, ``args`` spread out)."""
    n, K, N = x.shape
    for k in range(K):
        for t in range(n):
            rec = record_every > 0 and (k0 + t + 1) % record_every == 0
            row = (k0 + t + 1) // record_every - k0 // record_every - 1 if rec else 0
            _trial_step(W, k, x[t, k], y[t, k], r, ceps_over_r, q, ceps, beta, theta, phidt, A,
                        c_u, c_w, eta, rule, fkind, alpha, wscale, ws, fp, rec, row, rec_w,
                        rec_neuron, ext)
        _fold_weights(W, k, ext)


@numba.njit(cache=True, nogil=True)
def _fused_kernel(sp, T, trials, seed, r, ceps_over_r, q, ceps, beta, theta, phidt, A, c_u,
                  c_w, eta, rule, fkind, alpha, wscale, ws, fp, W, k0, record_every, rec_w,
                  rec_neuron, rec_aff, teach, ext):
    """:func:`_chunk_kernel` over the next ``T`` steps with the spikes drawn inside the loop
    (:func:`emulator.spikes.spikes_step`, bit for bit as :class:`emulator.spikes.SpikeSource`:
    ``sp`` its kernel arguments, whose float64 traces are advanced in place); no (T, B, N)
    array exists.  ``teach`` (K, M) accumulates the teacher spikes.  ``rec_aff`` (3, R, K, N)
    (or with R = 0: nothing) receives the traces a_m, a_s and the USPs of the recorded steps;
    with ``ext`` the traces' running extremes go there with the rest."""
    K, M, N = W.shape
    keep_aff = rec_aff.shape[1] > 0
    pin, pteach = spike_prefixes(seed, k0, T)
    spk = np.zeros(N, np.uint8)
    xf = np.zeros(N, np.float64)
    y = np.zeros(M, np.uint8)
    for k in range(K):
        tb = np.int64(trials[k]) << 32
        am = sp.am[k]
        as_ = sp.as_[k]
        # The traces are >= +0.0 (sums of non-negative terms from +0.0), so their bit patterns
        # read as int64 are in the same order as the values: integer min / max, which LLVM
        # vectorizes (float ones it does not).  Extremes of +-inf start as +-large codes.
        amb = am.view(np.int64)
        asb = as_.view(np.int64)
        lm = hm = ls = hs = np.int64(0)
        if ext is not None:
            eb = ext[k].view(np.int64)
            lm, hm, ls, hs = eb[0, _E_TM], eb[1, _E_TM], eb[0, _E_TS], eb[1, _E_TS]
        for t in range(T):
            spikes_step(sp, k, tb, pin[t], pteach[t], spk, xf, y)
            for j in range(M):
                teach[k, j] += y[j]
            if ext is not None:
                for i in range(N):
                    lm = min(lm, amb[i])
                    hm = max(hm, amb[i])
                    ls = min(ls, asb[i])
                    hs = max(hs, asb[i])
            rec = record_every > 0 and (k0 + t + 1) % record_every == 0
            row = (k0 + t + 1) // record_every - k0 // record_every - 1 if rec else 0
            if rec and keep_aff:
                for i in range(N):
                    rec_aff[0, row, k, i] = am[i]
                    rec_aff[1, row, k, i] = as_[i]
                    rec_aff[2, row, k, i] = xf[i]
            _trial_step(W, k, xf, y, r, ceps_over_r, q, ceps, beta, theta, phidt, A, c_u, c_w,
                        eta, rule, fkind, alpha, wscale, ws, fp, rec, row, rec_w, rec_neuron, ext)
        _fold_weights(W, k, ext)
        if ext is not None:
            eb = ext[k].view(np.int64)
            eb[0, _E_TM], eb[1, _E_TM], eb[0, _E_TS], eb[1, _E_TS] = lm, hm, ls, hs


def run_chunk(W, x, y, args, k0: int = 0, record_every: int = 0, rec_w=None, rec_neuron=None,
              ext=None) -> None:
    """Apply n Euler steps in place, compiled: W (K, M, N); x (n, K, N) USPs [mV]; y (n, K, M)
    teacher counts; ``args`` = :meth:`Rule.kernel_args` (rule, constants, scratch buffers).

    Same arithmetic as :class:`Rule` (up to summation order, ~1e-13 relative).  Optional
    recording, for the global steps k = k0 + t with ``(k + 1) % record_every == 0`` (row r for
    the r-th such step of the chunk): ``rec_w`` (R, K, M, N) gets the weights after the update
    of step k; ``rec_neuron`` (5, R, K, M) gets :data:`NEURON_VARS` of step k, computed at the
    weights before its update (as :meth:`Rule.step_variables`).  R must equal the number of
    recorded steps in the chunk; pass None (or a zero-length array) to skip either record.
    ``ext`` (K, 2, len(:data:`EXTREME_VARS`)), from :func:`new_extremes`, accumulates the
    running minimum (``ext[:, 0]``) and maximum (``ext[:, 1]``) of each trial's values over
    every step, the weights' initial values included (the traces are not known here: their
    columns stay as they were); None (the default) compiles a loop without them.
    """
    K, M, N = W.shape
    n = x.shape[0]
    # the kernel does not bound-check: the row counts must match the recorded steps exactly
    r0, r1 = record_rows(int(k0), n, record_every)
    n_rows = r1 - r0
    rec_w, rec_neuron = _rec_arrays(K, M, N, n_rows, rec_w, rec_neuron)
    ext = _ext_array(K, ext)
    _chunk_kernel(W, x, y, *args, int(k0), int(record_every), rec_w, rec_neuron, ext)


def _ext_array(K, ext):
    if ext is None:
        return None
    if ext.shape != (K, 2, len(EXTREME_VARS)) or ext.dtype != np.float64 \
            or not ext.flags.c_contiguous:
        raise ValueError(f"ext must be a C-contiguous float64 array of shape "
                         f"{(K, 2, len(EXTREME_VARS))} (got {ext.dtype} {ext.shape})")
    return ext


def _rec_arrays(K, M, N, n_rows, rec_w, rec_neuron):
    if rec_w is None:
        rec_w = np.empty((0, K, M, N))
    elif rec_w.shape[0] and rec_w.shape != (n_rows, K, M, N):
        raise ValueError(f"rec_w must have shape {(n_rows, K, M, N)} (got {rec_w.shape})")
    if rec_neuron is None:
        rec_neuron = np.empty((len(NEURON_VARS), 0, K, M))
    elif rec_neuron.shape[1] and rec_neuron.shape != (len(NEURON_VARS), n_rows, K, M):
        raise ValueError(f"rec_neuron must have shape {(len(NEURON_VARS), n_rows, K, M)} "
                         f"(got {rec_neuron.shape})")
    return rec_w, rec_neuron


def run_fused(W, src: SpikeSource, n_steps: int, args, record_every: int = 0, rec_w=None,
              rec_neuron=None, teach=None, parallel: bool = False, rec_aff=None,
              ext=None) -> None:
    """:func:`run_chunk` over the next ``n_steps`` steps of ``src``, with the spikes drawn
    inside the compiled loop (same bits as ``src.next`` + :func:`run_chunk`); ``src``'s traces
    and step advance as if ``src.next(n_steps)`` had been called.  ``teach`` (K, M) int64
    accumulates the teacher spikes.  ``parallel=True`` runs blocks of trials on threads
    (each with its own scratch; trials are independent, so the bits do not change).
    ``src`` must hold the trials of ``W``, in order.  ``rec_aff`` (3, R, K, N) receives
    :data:`AFFERENT_VARS` (the traces a_m, a_s and the USPs [mV]) of the recorded steps;
    ``ext`` as in :func:`run_chunk`, the traces' columns included."""
    K, M, N = W.shape
    k0 = src.k
    r0, r1 = record_rows(k0, n_steps, record_every)
    n_rows = r1 - r0
    rec_w, rec_neuron = _rec_arrays(K, M, N, n_rows, rec_w, rec_neuron)
    if rec_aff is None:
        rec_aff = np.empty((len(AFFERENT_VARS), 0, K, N))
    elif rec_aff.shape[1] and rec_aff.shape != (len(AFFERENT_VARS), n_rows, K, N):
        raise ValueError(f"rec_aff must have shape {(len(AFFERENT_VARS), n_rows, K, N)} "
                         f"(got {rec_aff.shape})")
    ext = _ext_array(K, ext)
    teach = np.zeros((K, M), np.int64) if teach is None else teach
    sp = src.kernel_args()
    head, scratch = args[:-2], args[-2:]
    several = len(trial_blocks(K, parallel)) > 1

    def call(b0, b1, bufs):
        spb = sp._replace(fw=sp.fw[b0:b1], am=sp.am[b0:b1], as_=sp.as_[b0:b1])
        ws = tuple(np.empty_like(a) for a in scratch) if several else scratch
        _fused_kernel(spb, np.int64(n_steps), src.trials[b0:b1], np.uint64(src.seed), *head, *ws,
                      W[b0:b1], np.int64(k0), np.int64(record_every), *bufs, teach[b0:b1],
                      None if ext is None else ext[b0:b1])
    # C-contiguous records of each block's trials, copied into the outputs afterwards: one
    # compiled signature whatever the slices the caller passes
    in_blocks(K, parallel, call, ((rec_w, 1), (rec_neuron, 2), (rec_aff, 2)),
              (0, n_rows), always_buffer=True)
    src.advance(n_steps)


def compiled_parametrization(f, N):
    """(fkind, alpha (N,), w_scale) of ``f`` for the compiled loop: 0 identity, 1 attenuation,
    2 sinh; None for other parametrizations."""
    if getattr(f, "is_identity", False):
        return 0, np.ones(1), 1.0
    if isinstance(f, Attenuation):
        return 1, np.array(np.broadcast_to(f.alpha, (N,)), dtype=np.float64), 1.0
    if isinstance(f, Sinh):
        return 2, np.ones(1), float(f.w_scale)
    return None
