"""Mutation probes of issue 15 (a tool, not a test; pytest does not collect it).

Each probe is a one-line change applied to BOTH twins at once (numpy stages and their numba
twin, or the one shared function), so that twin-against-twin tests cannot see it.  The
script copies HEAD into a temporary clone, applies one probe, clears nothing it does not
own (the clone has a fresh numba cache), runs the tests that must catch it, and reports
caught / survived.  Every probe must be caught.

    uv run python tests/mutation_probes.py            # all seven (about 2 min each)
    uv run python tests/mutation_probes.py a d        # some of them

a: weight saturation bound off by one; b: sigmoid table read one node off; c: underflow
counted without its ``post x bracket != 0`` condition; d: student spike threshold doubled;
e: decay constants floored in discretize; f: teacher spike probability 16 % too high;
g: sign of the heterosynaptic term.
"""
from __future__ import annotations

import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
TESTS = ("tests/test_oracle_datapath.py", "tests/test_spike_draws.py",
         "tests/test_counter_invariants.py", "tests/test_stage_bounds.py",
         "tests/test_discretize_math.py")

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
 "e": [("emulator/discretize.py",
        "    decay_m = int(round(params.decay_m * 2**tr[\"decay_frac\"]))\n    decay_s = int(round(params.decay_s * 2**tr[\"decay_frac\"]))\n",
        "    decay_m = int(math.floor(params.decay_m * 2**tr[\"decay_frac\"]))\n    decay_s = int(math.floor(params.decay_s * 2**tr[\"decay_frac\"]))\n")],
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
}


def probe(name: str) -> bool:
    """True when at least one test fails with mutation ``name`` applied."""
    with tempfile.TemporaryDirectory() as tmp:
        clone = pathlib.Path(tmp) / "repo"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        for path, old, new in MUTATIONS[name]:
            f = clone / path
            text = f.read_text()
            if old not in text:
                raise SystemExit(f"probe {name}: the original line is gone from {path}; "
                                 f"update MUTATIONS")
            f.write_text(text.replace(old, new, 1))
        proc = subprocess.run([sys.executable, "-m", "pytest", *TESTS, "-q", "-x",
                               "-p", "no:cacheprovider", "--tb=no"], cwd=clone,
                              capture_output=True, text=True)
        failed = [ln for ln in proc.stdout.splitlines() if ln.startswith("FAILED")]
        print(f"{name}: {'caught' if proc.returncode else 'SURVIVED'} "
              f"{failed[0][7:] if failed else ''}", flush=True)
        return proc.returncode != 0


if __name__ == "__main__":
    names = sys.argv[1:] or sorted(MUTATIONS)
    sys.exit(0 if all([probe(n) for n in names]) else 1)
