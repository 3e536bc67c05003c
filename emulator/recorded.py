"""Recorded input spike trains, played instead of the Poisson draws, streamed in chunks.

Two file formats (``tasks/README.md``):

* ``.npy``: a raster of shape (T, N), 0/1 (bool or integer), one row per time step of
  ``dt_s``.  It is memory-mapped: a chunk of steps reads only its rows, so a recording
  larger than memory plays as well as a small one.
* ``.npz``: spike times, ``times_s`` (K,) ascending, ``afferent`` (K,) integers in
  [0, N), and the scalars ``n_afferents`` and ``duration_s``.  Spike j falls into step
  ``floor(times_s[j] / dt_s)``; two spikes of one afferent in one step are one spike (the
  model's at most one spike per bin), counted in :attr:`RecordedSpikes.merged`.

The same recording drives every trial (trials differ in their initial and teacher
weights); every backend gets the identical spikes from :meth:`RecordedSpikes.chunk`.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

__all__ = ["RecordedSpikes", "RecordingError"]


class RecordingError(ValueError):
    """A recording that cannot be played: one line naming the problem."""


class RecordedSpikes:
    """Input spikes (T steps, N afferents) from a file, read chunk by chunk.

    Parameters
    ----------
    path : the ``.npy`` raster or ``.npz`` spike-time file
    dt_s : the recording's time step [s] (must equal the neuron's dt)
    """

    def __init__(self, path, dt_s: float):
        self.path = Path(path)
        self.dt = float(dt_s)
        self.merged = 0
        try:
            if self.path.suffix == ".npy":
                self._raster = np.load(self.path, mmap_mode="r", allow_pickle=False)
                if self._raster.ndim != 2 or self._raster.dtype.kind not in "biu":
                    raise RecordingError(f"{self.path.name}: a raster must be a 2-D 0/1 array "
                                         f"(T, N) (got {self._raster.dtype} shape "
                                         f"{self._raster.shape})")
                self.n_steps, self.N = (int(s) for s in self._raster.shape)
                self._times = None
            elif self.path.suffix == ".npz":
                self._raster = None
                with np.load(self.path, allow_pickle=False) as z:
                    missing = {"times_s", "afferent", "n_afferents", "duration_s"} - set(z.files)
                    if missing:
                        raise RecordingError(f"{self.path.name}: spike-time file lacks "
                                             f"{', '.join(sorted(missing))}")
                    t = np.asarray(z["times_s"], np.float64)
                    a = np.asarray(z["afferent"])
                    self.N = int(z["n_afferents"])
                    duration = float(z["duration_s"])
                if t.ndim != 1 or a.shape != t.shape or a.dtype.kind not in "iu":
                    raise RecordingError(f"{self.path.name}: times_s and afferent must be 1-D "
                                         "of one length, afferent integers")
                if t.size and (np.any(np.diff(t) < 0) or t[0] < 0 or not np.all(np.isfinite(t))):
                    raise RecordingError(f"{self.path.name}: times_s must be finite, >= 0 and "
                                         "ascending")
                if a.size and (a.min() < 0 or a.max() >= self.N):
                    raise RecordingError(f"{self.path.name}: afferent must lie in "
                                         f"[0, {self.N}) (got {a.min()}..{a.max()})")
                self.n_steps = int(np.floor(duration / self.dt + 1e-9))
                steps = np.floor(t / self.dt + 1e-9).astype(np.int64)
                keep = steps < self.n_steps
                self._steps, self._aff = steps[keep], a[keep].astype(np.int64)
                key = self._steps * self.N + self._aff
                self.merged = int(key.size - np.unique(key).size)
                self._times = True
            else:
                raise RecordingError(f"{self.path.name}: a recording is a .npy raster or an "
                                     ".npz of spike times")
        except RecordingError:
            raise
        except (OSError, ValueError) as exc:
            raise RecordingError(f"{self.path.name}: cannot be read ({exc})") from None
        if self.n_steps < 1 or self.N < 1:
            raise RecordingError(f"{self.path.name}: holds no steps or no afferents")

    @property
    def duration_s(self) -> float:
        return self.n_steps * self.dt

    def chunk(self, k0: int, n: int) -> np.ndarray:
        """Spikes of steps ``k0 .. k0 + n - 1``: (n, N) uint8 of 0/1."""
        k0, n = int(k0), int(n)
        if k0 < 0 or k0 + n > self.n_steps:
            raise RecordingError(f"{self.path.name}: the recording holds {self.n_steps} steps "
                                 f"({self.duration_s:g} s); steps {k0}..{k0 + n - 1} were asked "
                                 "for (run fewer --steps)")
        if self._raster is not None:
            return (np.asarray(self._raster[k0:k0 + n]) != 0).astype(np.uint8)
        out = np.zeros((n, self.N), np.uint8)
        lo, hi = np.searchsorted(self._steps, [k0, k0 + n])
        out[self._steps[lo:hi] - k0, self._aff[lo:hi]] = 1
        return out

    def mean_rates(self, chunk_steps: int = 100_000) -> np.ndarray:
        """Each afferent's mean rate over the recording [Hz] (read in chunks)."""
        counts = np.zeros(self.N, np.int64)
        for k in range(0, self.n_steps, chunk_steps):
            counts += self.chunk(k, min(chunk_steps, self.n_steps - k)).sum(axis=0, dtype=np.int64)
        return counts / self.duration_s

    def digest(self) -> str:
        h = hashlib.sha256()
        with open(self.path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
