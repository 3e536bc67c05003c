"""Write tasks/recorded_inputs.npz, the spike-time recording of the bundled task
``recorded_inputs`` (run: python tasks/make_recorded_inputs.py; the file is committed).

40 afferents, 20 s at dt = 0.5 ms, each an inhomogeneous Poisson train whose rate swings
sinusoidally, r_i(t) = r_i (1 + 0.8 sin(2 pi f_i t + phase_i)), with base rates from 5 to
40 Hz and swing frequencies from 0.5 to 4 Hz: spike trains that the project's own Poisson
generator (constant rates) does not make.  Drawn with the counter RNG (fixedpoint.rng,
seed 2022), so the file is the same on every machine.  Written as spike times
(``times_s``, ``afferent``, ``n_afferents``, ``duration_s``), the format a user's
recording would come in.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fixedpoint import rng  # noqa: E402

N, DT, DURATION, SEED, STREAM = 40, 0.0005, 20.0, 2022, 11


def spikes() -> tuple[np.ndarray, np.ndarray]:
    steps = int(round(DURATION / DT))
    i = np.arange(N)
    base = 5.0 + 35.0 * i / (N - 1)
    freq = 0.5 + 3.5 * ((i * 7) % N) / (N - 1)
    phase = 2 * np.pi * ((i * 13) % N) / N
    idx = rng.trial_unit_index(np.array([0]), i)
    times, aff = [], []
    for k0 in range(0, steps, 10_000):
        k = np.arange(k0, min(k0 + 10_000, steps))
        t = k * DT
        p = (base * (1 + 0.8 * np.sin(2 * np.pi * freq * t[:, None] + phase)) * DT)[:, None, :]
        x = rng.bernoulli_steps(p, SEED, STREAM, k0, k.size, idx)[:, 0, :]
        kk, ii = np.nonzero(x)
        times.append((k0 + kk + 0.5) * DT)          # spike at the middle of its bin
        aff.append(ii)
    return np.concatenate(times), np.concatenate(aff).astype(np.int16)


if __name__ == "__main__":
    t, a = spikes()
    out = Path(__file__).resolve().parent / "recorded_inputs.npz"
    np.savez_compressed(out, times_s=t, afferent=a, n_afferents=np.int64(N),
                        duration_s=np.float64(DURATION))
    print(f"{out}: {t.size} spikes of {N} afferents over {DURATION:g} s")
