"""Write tasks/recorded_inputs.npz, the spike-time recording of the bundled task
``recorded_inputs``, and tasks/recorded_teacher.npz, the recorded teacher of the bundled
task ``recorded_teacher`` (run: python tasks/make_recorded_inputs.py; the files are
committed).

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


#: The recorded teacher: M_TEACHER model neurons listening to the recorded inputs through
#: hidden weights uniform in [-1.5/N, 1.5/N] (counter RNG, TEACHER_SEED), their spikes drawn
#: as natgrad's realizable teacher draws them for trial 0 with seed TEACHER_SEED.  A task
#: that knew the hidden weights would get these very spikes (tests/natgrad/test_recorded_teacher.py).
M_TEACHER, TEACHER_SEED, W_SCALE = 2, 2023, 1.5 / N


def hidden_weights() -> np.ndarray:
    idx = rng.trial_unit_index(np.array([0]), np.arange(M_TEACHER * N))
    u = rng.uniform(TEACHER_SEED, rng.STREAM_INIT, 1, idx)
    return ((2.0 * u - 1.0) * W_SCALE).reshape(1, M_TEACHER, N)


def teacher_spikes(inputs_file: Path) -> tuple[np.ndarray, np.ndarray]:
    from emulator.recorded import RecordedSpikes
    from emulator.spikes import SpikeSource
    from emulator.task import Task
    rec = RecordedSpikes(inputs_file, DT)
    w = hidden_weights()
    task = Task(rates=rec.mean_rates(), w_init=np.zeros_like(w), w_target=w, inputs=rec)
    _, Y = SpikeSource(task, TEACHER_SEED, np.array([0])).next(rec.n_steps)
    kk, jj = np.nonzero(Y[:, 0, :])
    return (kk + 0.5) * DT, jj.astype(np.int16)


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    t, a = spikes()
    out = here / "recorded_inputs.npz"
    np.savez_compressed(out, times_s=t, afferent=a, n_afferents=np.int64(N),
                        duration_s=np.float64(DURATION))
    print(f"{out}: {t.size} spikes of {N} afferents over {DURATION:g} s")
    t, j = teacher_spikes(out)
    out_t = here / "recorded_teacher.npz"
    np.savez_compressed(out_t, times_s=t, afferent=j, n_afferents=np.int64(M_TEACHER),
                        duration_s=np.float64(DURATION), hidden_weights=hidden_weights())
    print(f"{out_t}: {t.size} spikes of {M_TEACHER} teacher neurons over {DURATION:g} s")
