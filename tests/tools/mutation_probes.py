"""Mutation probes of the test suite (a tool, not a test; pytest does not collect it).

Each probe is a one-line change applied to BOTH twins at once (numpy stages and their numba
twin, or the one shared function), so that twin-against-twin tests cannot see it.  The
script copies HEAD into a temporary clone, applies one probe, clears nothing it does not
own (the clone has a fresh numba cache), runs the tests that must catch it, and reports
caught / survived.  Every probe must be caught.

    uv run python tests/tools/mutation_probes.py            # all of them (about 2 min each)
    uv run python tests/tools/mutation_probes.py a d        # some of them
    uv run python tests/tools/mutation_probes.py baseline   # the clone passes without a probe

a: weight saturation bound off by one; b: sigmoid table read one node off; c: underflow
counted without its ``post x bracket != 0`` condition; d: student spike threshold doubled;
e: decay constants floored (in ``rule_math``, shared by both integer backends); f: teacher
spike probability 16 % too high; g: sign of the heterosynaptic term.

The learning engine's options that the shipped configs leave at one value
(``neuron.py`` / ``lava_replica.py`` and their twin ``kernel_step.py``):
h: a negative event sent on every step of an epoch, not only on its last (the backlog
drains too fast); i: the flush's u<k> ticks one step early (``k // t_epoch`` for
``(k + 1) // t_epoch``); j: the per-synapse rounding's random-word index ``m + i`` for
``m N + i``; k: the plain sigma lookup floors the node index (the node below, not the
nearest); l: the tags rounded down onto the quantum (``floor`` for ``round``, in the one
shared ``derivation``); m: the per-synapse trace rounding draws every within-epoch step's
word at the epoch's last step; n: a second pre spike in an epoch adds no impulse;
o: graded levels go out on the epoch's first step instead of its last.

The clone is HEAD with the working tree's test files (``TESTS`` and their helpers) copied
over it, so probes can be run on tests that are not committed yet.
"""
from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
TESTS = ("tests/emulator/test_oracle_datapath.py", "tests/emulator/test_spike_draws.py",
         "tests/emulator/test_counter_invariants.py", "tests/emulator/test_stage_bounds.py",
         "tests/emulator/test_discretize_math.py", "tests/emulator/learning/test_tag_quantization.py",
         "tests/emulator/learning/test_le_oracle.py")
#: copied from the working tree into the clone with TESTS (helpers the tests import)
HELPERS = ("tests/conftest.py", "tests/tools/oracle_datapath.py", "tests/tools/option_coverage.py",
           "tests/tools/le_oracle.py", "tests/tools/datapath_cases.py")

MUTATIONS = {
 "a": [("emulator/stages.py",
        "    acc, sat = _sat_fmt(acc + dw, d.variables[\"weights\"].acc_fmt)\n",
        "    _f = d.variables[\"weights\"].acc_fmt\n    acc, sat = _sat(acc + dw, _f.min_int, _f.max_int + 1)\n"),
       ("emulator/stages_jit.py",
        "        elif a > top - 1:\n            a = top - 1\n            n_sat += 1\n        acc_row[i] = a\n",
        "        elif a > top:\n            a = top\n            n_sat += 1\n        acc_row[i] = a\n")],
 "b": [("emulator/stages.py",
        "    return d.sigma_table.lookup(v, interp=d.sigma_interp, below=True)\n",
        "    return d.sigma_table.lookup(np.asarray(v) + (1 << (d.v_bits - d.sigma_lut_bits)), interp=d.sigma_interp, below=True)\n"),
       ("emulator/stages_jit.py",
        "        return lut_lookup_interp(v, sigma_lut, -top, top - 1, step_bits, _HALF_UP)\n    return lut_lookup_below(v, sigma_lut, -top, top - 1, step_bits)\n",
        "        return lut_lookup_interp(v + (np.int64(1) << step_bits), sigma_lut, -top, top - 1, step_bits, _HALF_UP)\n    return lut_lookup_below(v + (np.int64(1) << step_bits), sigma_lut, -top, top - 1, step_bits)\n")],
 "c": [("emulator/stages.py",
        "int(np.count_nonzero((dw == 0) & (pbr != 0)))", "int(np.count_nonzero(dw == 0))"),
       ("emulator/stages_jit.py",
        "        if d == 0 and pbr[i] != 0:\n", "        if d == 0:\n")],
 "d": [("emulator/stages.py",
        "    thr = shift(sigma * d.phidt_mant, d.sigma_frac + d.phidt_shift - 53)\n",
        "    thr = 2 * shift(sigma * d.phidt_mant, d.sigma_frac + d.phidt_shift - 53)\n"),
       ("emulator/stages_jit.py",
        "    thr = _shift(sigma * c.phidt_mant, c.sigma_frac + c.phidt_shift - 53, _FLOOR, np.uint64(0))\n",
        "    thr = 2 * _shift(sigma * c.phidt_mant, c.sigma_frac + c.phidt_shift - 53, _FLOOR, np.uint64(0))\n")],
 "e": [("emulator/rule_math.py",
        "    return (int(round(params.decay_m * 2 ** decay_frac)),\n            int(round(params.decay_s * 2 ** decay_frac)))\n",
        "    return (int(math.floor(params.decay_m * 2 ** decay_frac)),\n            int(math.floor(params.decay_s * 2 ** decay_frac)))\n")],
 "f": [("emulator/spikes.py",
        "            prob = p.phi_max * sigma(Vt, p) * p.dt\n",
        "            prob = p.phi_max * sigma(Vt, p) * p.dt * 1.16\n"),
       ("emulator/spikes.py",
        "            prob = sp.phi_max * expit_one(sp.beta * (v - sp.theta)) * sp.dt\n",
        "            prob = sp.phi_max * expit_one(sp.beta * (v - sp.theta)) * sp.dt * 1.16\n")],
 "g": [("emulator/stages.py",
        "    b, s_b = _sat_fmt(homo[:, None, :] - d.cu_q + het, fmt)\n",
        "    b, s_b = _sat_fmt(homo[:, None, :] - d.cu_q - het, fmt)\n"),
       ("emulator/stages_jit.py",
        "        b = homo[i] - cu + out[i]\n", "        b = homo[i] - cu - out[i]\n")],
 # ---- learning-engine options
 "h": [("emulator/learning/neuron.py",
        "    go_n = (st.pend[..., 1] > 0) & last\n", "    go_n = st.pend[..., 1] > 0\n"),
       ("emulator/learning/kernel_step.py",
        "                go_n = last and pend[b, m, 1] > 0\n",
        "                go_n = pend[b, m, 1] > 0\n")],
 "i": [("emulator/learning/lava_replica.py",
        "    u = int(((k + 1) // te) % (2 ** ku) == 0)\n",
        "    u = int((k // te) % (2 ** ku) == 0)\n"),
       ("emulator/learning/kernel_step.py",
        "    u = 1 if ((k + 1) // te) % (np.int64(1) << kc[KC_U_K]) == 0 else 0\n",
        "    u = 1 if (k // te) % (np.int64(1) << kc[KC_U_K]) == 0 else 0\n")],
 "j": [("emulator/learning/lava_replica.py",
        "| (np.arange(m)[:, None] * n + np.arange(n))\n",
        "| (np.arange(m)[:, None] + np.arange(n))\n"),
       ("emulator/learning/kernel_step.py",
        "        base = tb + m * N     # tb | (m N + i)", "        base = tb + m     # tb | (m N + i)")],
 "k": [("emulator/learning/neuron.py",
        "        return lut[_hu(pos, sub)]\n", "        return lut[pos >> sub]\n"),
       ("emulator/learning/kernel_step.py",
        "            s = lut[hu_i(pos, sub)]\n", "            s = lut[pos >> sub]\n")],
 "l": [("emulator/learning/derivation.py",
        "(step * np.round(raw / step)).astype(np.int64)",
        "(step * np.floor(raw / step)).astype(np.int64)")],
 "m": [("emulator/learning/lava_replica.py",
        "STREAM_X_ROUND, k_first + t - 1, ix)", "STREAM_X_ROUND, k, ix)"),
       ("emulator/learning/lava_replica.py",
        "STREAM_Y_ROUND, k_first + t - 1, iy)", "STREAM_Y_ROUND, k, iy)"),
       ("emulator/learning/kernel_step.py",
        "        kk = k + 1 - te + stp - 1\n", "        kk = k\n")],
 "n": [("emulator/learning/lava_replica.py",
        "np.where(multi[:, None, :], np.clip(syn.x + d.k_x, 0, tmax), syn.x)",
        "np.where(multi[:, None, :], np.clip(syn.x, 0, tmax), syn.x)"),
       ("emulator/learning/kernel_step.py",
        "xtr[b, jj, i] = saturate(xtr[b, jj, i] + kc[KC_KX], 0, tmax)",
        "xtr[b, jj, i] = saturate(xtr[b, jj, i], 0, tmax)")],
 "o": [("emulator/learning/neuron.py",
        "emit=(k + 1) % d.engine.t_epoch == 0)", "emit=k % d.engine.t_epoch == 0)"),
       ("emulator/learning/kernel_step.py",
        "            if last:\n                ratio = kc[KC_UNIT_RATIO]",
        "            if k % te == 0:\n                ratio = kc[KC_UNIT_RATIO]")],
}


def baseline() -> bool:
    """True when TESTS pass on the clone without a mutation (so a caught probe is its
    mutation's doing, not a broken clone)."""
    return not probe("baseline", report=False)


def probe(name: str, report: bool = True) -> bool:
    """True when at least one test fails with mutation ``name`` applied."""
    with tempfile.TemporaryDirectory() as tmp:
        clone = pathlib.Path(tmp) / "repo"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        for path in TESTS + HELPERS:               # the working tree's tests
            if (ROOT / path).exists():
                (clone / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(ROOT / path, clone / path)
        for path, old, new in MUTATIONS.get(name, ()):
            f = clone / path
            text = f.read_text()
            if old not in text:
                raise SystemExit(f"probe {name}: the original line is gone from {path}; "
                                 f"update MUTATIONS")
            f.write_text(text.replace(old, new, 1))
        proc = subprocess.run([sys.executable, "-m", "pytest", *TESTS, "-q", "-x",
                               "-p", "no:cacheprovider", "--tb=no"], cwd=clone,
                              capture_output=True, text=True)
        failed = [ln for ln in proc.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))]
        if report:
            print(f"{name}: {'caught' if proc.returncode else 'SURVIVED'} "
                  f"{failed[0].split(' ', 1)[1] if failed else ''}", flush=True)
        else:
            print(f"{name}: {'FAILS without a mutation: ' + failed[0] if failed else 'passes'}"
                  if proc.returncode else f"{name}: passes", flush=True)
        return proc.returncode != 0


if __name__ == "__main__":
    names = sys.argv[1:] or sorted(MUTATIONS)
    if names == ["baseline"]:
        sys.exit(0 if baseline() else 1)
    sys.exit(0 if all([probe(n) for n in names]) else 1)
