"""Constants shared by the numpy and numba halves of fixedpoint (a leaf module: no imports
from the package, so that any module, including :mod:`fixedpoint.jit`, can use them
without creating an import cycle).

* SplitMix64 constants of the counter-based RNG (:mod:`fixedpoint.rng`, :mod:`fixedpoint.jit`).
* Names of the rounding modes (:mod:`fixedpoint.rounding`); their position in
  :data:`ROUNDING_MODES` is the integer code used by :mod:`fixedpoint.jit`.
* The Loihi/Lava decay resolution (:mod:`fixedpoint.decay`, :mod:`fixedpoint.jit`).
"""
from __future__ import annotations

import numpy as np

# ---- counter-based RNG (SplitMix64) ---------------------------------------------------------
GOLDEN = np.uint64(0x9E3779B97F4A7C15)  #: Weyl increment, 2**64 / golden ratio (odd)
MIX_M1 = np.uint64(0xBF58476D1CE4E5B9)  #: first multiplier of the mix64 finaliser
MIX_M2 = np.uint64(0x94D049BB133111EB)  #: second multiplier of the mix64 finaliser
MASK64 = (1 << 64) - 1                  #: reduction of Python ints modulo 2**64

# ---- rounding ---------------------------------------------------------------------------------
ROUNDING_MODES = ("floor", "trunc", "half_up", "half_even", "half_away", "stochastic")
MAX_SHIFT = 62  #: largest right shift of an int64 value the rounding functions accept

# ---- decays ---------------------------------------------------------------------------------
DECAY_BITS = 12
DECAY_UNITY = 1 << DECAY_BITS  #: 4096, "no decay" multiplier of the Lava form

#: fixedpoint.recip: log2 of the reciprocal seed table's size (256 entries).
RECIP_TABLE_BITS = 8
