"""Named per-variable counts of overflow, saturation and underflow over a run.

Kinds
-----
``'overflow'``    a value left its format and was *wrapped* (modulo 2**bits).
``'saturation'``  a value left its format and was *clipped* to the nearest end.
``'underflow'``   a nonzero value (an increment, a product, a float) rounded to exactly 0,
                  i.e. information silently lost below the LSB.

Besides the totals, the first ``step`` at which each kind happened is kept (the smallest
step passed with a positive count), which is usually what one needs to debug a run.
Counters are plain Python ints, so there is no limit and no float round-off; objects are
picklable and :meth:`OverflowCounters.merge` adds up counters from different batches or
workers (first steps combine with ``min``).
"""
from __future__ import annotations

import numpy as np

KINDS = ("overflow", "saturation", "underflow")


class OverflowCounters:
    """Accumulate ``(name, kind)`` counts and the first step each kind occurred."""

    def __init__(self):
        self._counts: dict[str, dict[str, int]] = {}
        self._first: dict[str, dict[str, int | None]] = {}

    def _entry(self, name: str):
        if name not in self._counts:
            self._counts[name] = {k: 0 for k in KINDS}
            self._first[name] = {k: None for k in KINDS}
        return self._counts[name], self._first[name]

    def add(self, name: str, kind: str, count, step=None) -> None:
        """Add ``count`` events of ``kind`` for variable ``name`` at time ``step``.

        ``count`` is a non-negative int, or a boolean mask whose True entries are counted.
        A zero count still registers ``name`` (so reports list it with 0).
        """
        if kind not in KINDS:
            raise ValueError(f"unknown counter kind {kind!r}; expected one of {KINDS}")
        if isinstance(count, np.ndarray) and count.dtype == np.bool_:
            count = int(np.count_nonzero(count))
        elif isinstance(count, (bool, np.bool_)) or not isinstance(count, (int, np.integer)):
            raise TypeError(f"count must be an int or a boolean mask, got {count!r}")
        count = int(count)
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        counts, first = self._entry(str(name))
        counts[kind] += count
        if count and step is not None:
            step = int(step)
            if first[kind] is None or step < first[kind]:
                first[kind] = step

    def count(self, name: str, kind: str) -> int:
        """Total of ``kind`` for ``name`` (0 if never seen)."""
        if kind not in KINDS:
            raise ValueError(f"unknown counter kind {kind!r}")
        return self._counts.get(name, {}).get(kind, 0)

    def first_step(self, name: str, kind: str):
        """First step with a positive count of ``kind`` for ``name``, or None."""
        return self._first.get(name, {}).get(kind)

    def total(self, kind: str | None = None) -> int:
        """Sum over all names of one kind, or of all kinds."""
        kinds = KINDS if kind is None else (kind,)
        return sum(c[k] for c in self._counts.values() for k in kinds)

    @property
    def names(self) -> list[str]:
        """Registered variable names, in order of first appearance."""
        return list(self._counts)

    def merge(self, other: "OverflowCounters") -> "OverflowCounters":
        """Add ``other``'s counts into this object (in place) and return self."""
        for name, counts in other._counts.items():
            mine, first = self._entry(name)
            for k in KINDS:
                mine[k] += counts[k]
                s = other._first[name][k]
                if s is not None and (first[k] is None or s < first[k]):
                    first[k] = s
        return self

    def as_dict(self) -> dict:
        """``{name: {'overflow': n, 'saturation': n, 'underflow': n,
        'first_overflow': step|None, 'first_saturation': ..., 'first_underflow': ...}}``."""
        out = {}
        for name, counts in self._counts.items():
            d = dict(counts)
            d.update({f"first_{k}": self._first[name][k] for k in KINDS})
            out[name] = d
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "OverflowCounters":
        """Inverse of :meth:`as_dict`."""
        self = cls()
        for name, entry in d.items():
            counts, first = self._entry(name)
            for k in KINDS:
                counts[k] = int(entry.get(k, 0))
                s = entry.get(f"first_{k}")
                first[k] = None if s is None else int(s)
        return self

    def reset(self) -> None:
        """Forget everything."""
        self._counts.clear()
        self._first.clear()

    def __eq__(self, other) -> bool:
        return isinstance(other, OverflowCounters) and self.as_dict() == other.as_dict()

    def __repr__(self) -> str:
        parts = [f"{n}: " + ", ".join(f"{k}={c[k]}" for k in KINDS if c[k])
                 for n, c in self._counts.items()]
        return "OverflowCounters(" + "; ".join(parts) + ")"
