"""Counter-based random numbers: bits are a pure function of ``(seed, stream, step, index)``.

Every random draw in natgrad (Poisson inputs, teacher spikes, stochastic rounding) comes
from here, so that numpy, numba and Lava backends, any batch split and any time-chunking
see the very same bits.  There is no hidden state and no global RNG.

Construction
------------
``prefix = mix64(mix64(mix64(seed) ^ stream) ^ step)`` names one independent SplitMix64
sequence per ``(seed, stream, step)``; element ``index`` of that sequence is
``mix64(prefix + (index + 1) * GOLDEN)`` (all arithmetic modulo 2**64).  ``mix64`` is the
SplitMix64 / Stafford "Mix13" finaliser, a bijection of 64-bit words whose outputs pass
BigCrush when fed a Weyl sequence.  A plain-integer re-implementation of the same
formulas (used in the tests) reproduces every bit.

Conventions
-----------
* ``uniform``: the top 53 bits, ``u = (bits >> 11) * 2**-53`` in [0, 1).
* ``bernoulli(p)``: ``u < p`` evaluated exactly in integers as
  ``(bits >> 11) < floor(p * 2**53)`` (multiplying by a power of two is exact in
  float64), so P(spike) = floor(p * 2**53) / 2**53, within 2**-53 of ``p``.
* ``index`` layout for (trial, unit) arrays: ``trial << 32 | unit`` (see
  :func:`trial_unit_index`), so a trial's draws do not depend on which batch it is in.
"""
from __future__ import annotations

import numpy as np

from .constants import GOLDEN, MASK64 as _MASK64, MIX_M1 as _M1, MIX_M2 as _M2

# Named streams: one per kind of draw, so draws of different kinds never share bits.
STREAM_INPUT = 1      #: presynaptic Poisson spikes
STREAM_TEACHER = 2    #: teacher (target) spikes
STREAM_ROUND = 3      #: stochastic rounding of weight updates
STREAM_INIT = 4       #: initial / target weights of a task
STREAM_TEST = 5       #: test-set input spikes
STREAM_STUDENT = 6    #: output (student) spikes
STREAM_TRACE = 7      #: stochastic rounding of traces


def mix64(x):
    """SplitMix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


def stream_prefix(seed, stream, step):
    """64-bit key of the sequence for ``(seed, stream, step)``; broadcasts over ``step``."""
    s = mix64(np.uint64(int(seed) & _MASK64))
    s = mix64(s ^ np.uint64(int(stream) & _MASK64))
    return mix64(s ^ np.asarray(step, dtype=np.int64).astype(np.uint64))


def random_bits(seed, stream, step, index):
    """Random uint64 words, a pure function of ``(seed, stream, step, index)``.

    ``step`` and ``index`` are non-negative integer arrays that broadcast together.
    """
    prefix = stream_prefix(seed, stream, step)
    idx = np.asarray(index, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        return mix64(prefix + (idx + np.uint64(1)) * GOLDEN)


def uniform(seed, stream, step, index):
    """Uniform float64 in [0, 1) with 53 random bits."""
    return (random_bits(seed, stream, step, index) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def bernoulli_threshold(p):
    """Integer threshold ``floor(p * 2**53)`` (uint64) used by :func:`bernoulli`.

    ``p`` is clipped to [0, 1]; p = 1 gives 2**53, which every 53-bit draw is below.
    """
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    return np.floor(p * 2.0**53).astype(np.uint64)


def bernoulli(p, seed, stream, step, index):
    """Boolean draws with ``P(True) = floor(p * 2**53) / 2**53``; ``p`` broadcasts."""
    bits = random_bits(seed, stream, step, index) >> np.uint64(11)
    return bits < bernoulli_threshold(p)


def bernoulli_steps(p, seed, stream, k0, n_steps, index):
    """Bernoulli draws for the consecutive steps ``k0 .. k0 + n_steps - 1``, as uint8.

    Equal, bit for bit, to ``bernoulli(p, seed, stream, steps[:, None...], index)`` with
    ``steps = arange(k0, k0 + n_steps)``, but compiled: no (n_steps, ...) temporaries of
    64-bit words.  ``index`` is an int array of any shape S; ``p`` broadcasts to S (the
    same probability every step) or to (n_steps, *S).  Returns shape (n_steps, *S).
    """
    from .jit import bernoulli_steps_kernel  # lazy: numba is loaded only when needed

    index = np.asarray(index, dtype=np.int64)
    thr = bernoulli_threshold(p)
    if thr.ndim == index.ndim + 1:
        thr = np.broadcast_to(thr, (n_steps,) + index.shape).reshape(n_steps, -1)
    else:
        thr = np.broadcast_to(thr, index.shape).reshape(1, -1)
    out = np.empty((n_steps, index.size), np.uint8)
    bernoulli_steps_kernel(np.ascontiguousarray(thr), np.uint64(int(seed) & _MASK64),
                           np.uint64(int(stream) & _MASK64), np.int64(k0),
                           np.ascontiguousarray(index.ravel()), out)
    return out.reshape((n_steps,) + index.shape)


def trial_unit_index(trials, units):
    """Index array ``trial << 32 | unit`` of shape ``(len(trials), len(units))``."""
    trials = np.asarray(trials, dtype=np.int64)
    units = np.asarray(units, dtype=np.int64)
    if trials.size and (trials.min() < 0 or trials.max() >= 2**31):
        raise ValueError("trial ids must lie in [0, 2**31)")
    if units.size and (units.min() < 0 or units.max() >= 2**32):
        raise ValueError("unit ids must lie in [0, 2**32)")
    return (trials[:, None] << 32) | units[None, :]
