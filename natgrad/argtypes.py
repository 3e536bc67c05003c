"""Argparse types shared by the subcommands (one line of error for a bad value)."""
from __future__ import annotations

import argparse
import math

__all__ = ["bounded_float"]


def bounded_float(flag: str, hi: float, what: str):
    """An argparse type: a finite number in (0, ``hi``]; ``what`` says what it is in the
    error, e.g. ``--eta must be in (0, 1] (code units), got 2``."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} {text!r}: expected a number") from None
        if not (math.isfinite(v) and 0.0 < v <= hi):
            raise argparse.ArgumentTypeError(f"{flag} must be in (0, {hi:g}] ({what}), got {text}")
        return v
    return parse
