"""fixedpoint: exact, vectorized fixed-point arithmetic on int64 numpy arrays.

The one library every integer datapath of natgrad (emulator, Lava processes, deployment
export) is built from.  It knows nothing about neurons.  Semantics of every choice
(rounding at halves, saturate vs wrap, underflow, product formats, LUT layout) are
documented in ``docs/fixedpoint.md`` and in the module docstrings:

* :mod:`fixedpoint.qformat`  -- :class:`QFormat`, quantize / to_float, wrap / saturate
* :mod:`fixedpoint.rounding` -- rounding right shifts and requantization
* :mod:`fixedpoint.rng`      -- counter-based random bits ``f(seed, stream, step, index)``
* :mod:`fixedpoint.counters` -- :class:`OverflowCounters`
* :mod:`fixedpoint.decay`    -- Loihi/Lava 12-bit decays and exact multiplicative decays
* :mod:`fixedpoint.lut`      -- integer lookup tables with measured error
* :mod:`fixedpoint.jit`      -- scalar numba twins (import explicitly; needs numba)
"""
from . import rng
from .counters import KINDS, OverflowCounters
from .decay import (DECAY_BITS, DECAY_UNITY, decay, decay_exact, decay_factor, decay_mul,
                    decay_subtractive, loihi_decay_constant)
from .lut import LUT
from .qformat import (OVERFLOW_MODES, QFormat, convert, fit, product_format, quantize, saturate,
                      to_float, wrap)
from .rounding import (ROUNDING_MODES, count_underflow, requantize, round_float, shift_left,
                       shift_right, underflow_mask)

__all__ = [
    "rng", "KINDS", "OverflowCounters",
    "DECAY_BITS", "DECAY_UNITY", "decay", "decay_exact", "decay_factor", "decay_mul",
    "decay_subtractive", "loihi_decay_constant",
    "LUT", "product_format",
    "OVERFLOW_MODES", "QFormat", "convert", "fit", "quantize", "saturate", "to_float", "wrap",
    "ROUNDING_MODES", "count_underflow", "requantize", "round_float", "shift_left",
    "shift_right", "underflow_mask",
]
