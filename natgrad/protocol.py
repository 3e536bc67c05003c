"""The scaled protocol of ``natgrad run``, ``deploy`` and ``budget``, chosen once.

The paper's learning rates (code units, :data:`emulator.reference.ETA_CODE`; eta_A =
5.5e-4 for the approximate rule) take thousands of seconds to learn the Fig 3 task; the
commands' default 300-s protocol runs them :data:`ETA_SCALE` times faster (a scaled
protocol validated against the paper's learning curves, docs/spec_drift.md).
"""
from __future__ import annotations

from emulator.reference import ETA_CODE

__all__ = ["CHUNK_TRIAL_STEPS", "ETA_SCALE", "chunk_steps", "default_eta"]

#: Learning rates of the default protocol: the paper's code rates times this.
ETA_SCALE = 4.0


def default_eta() -> float:
    """The approximate rule's learning rate of ``natgrad run`` / ``deploy`` / ``budget``,
    code units: 4 x 5.5e-4 = 2.2e-3."""
    return ETA_CODE["approx"] * ETA_SCALE


#: Trial-steps per emulator chunk.  The integer kernels hold the GIL while a chunk runs,
#: so a Ctrl-C is handled only between chunks: about a second of work at most.  (The
#: chunk size changes no bit of the results.)
CHUNK_TRIAL_STEPS = 100_000


def chunk_steps(trials: int) -> int:
    """Time steps per emulator chunk for ``trials`` trials (see CHUNK_TRIAL_STEPS)."""
    return max(50, min(4000, CHUNK_TRIAL_STEPS // max(1, int(trials))))
