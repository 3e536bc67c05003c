"""Config fuzzing: invalid mutations of the bundled configs give one-line ConfigErrors.

Every case starts from a bundled config (both schemas: ``SCHEMA`` for kind fixed,
``LE_SCHEMA`` for kind learning_engine, and the float64 one) and applies one mutation that
makes it invalid: a wrong type, an out-of-range value, an unknown or missing key, a wrong
structure, broken YAML or a wrong text encoding.  Each file must be refused by
:func:`emulator.hwconfig.load` with a one-line :class:`ConfigError`; a sample also goes
through ``natgrad check-config``, which must exit with status 2, one line on stderr and no
traceback.
"""
import copy
import random
import re
import subprocess
import sys

import pytest
import yaml

from emulator.hwconfig import LE_SCHEMA, SCHEMA, ConfigError, Field, bundled_configs, load

N_CASES = 1200
N_CLI = 20
N_PROCESS = 3    #: of the N_CLI sample, run as separate processes
OPTIONAL_TOP = {"description", "target"}


def _schema(tree):
    return LE_SCHEMA if tree.get("kind") == "learning_engine" else SCHEMA


def _leaves(tree):
    """(section or None, key, Field) of every value of a fixed / learning-engine tree."""
    schema = _schema(tree)
    out = []
    for key, spec in schema.items():
        if isinstance(spec, dict):
            out += [(key, k, f) for k, f in spec.items() if k in tree.get(key, {})]
        elif key in tree:
            out.append((None, key, spec))
    return out


def _wrong_type(field: Field, rng):
    if field.kind is bool:
        return rng.choice([1, 0, "yes", "true", None, [True], 2.5])
    if field.kind is str:
        return rng.choice([5, 2.5, True, None, ["a"], {"a": 1}])
    if field.kind is int:
        return rng.choice(["8", 8.5, True, False, None, [8], {"bits": 8}, "ei\ngh t", "", "auto?"])
    return rng.choice(["1.0", True, None, [1.0], {"x": 1.0}, "nan"])      # float


def _out_of_range(field: Field, rng):
    if field.choices is not None and isinstance(field.choices[0], str):
        return rng.choice(["bogus", field.choices[0].upper() + "x", " " + field.choices[0], ""])
    if field.choices is not None:            # integer choices: another integer
        return rng.choice([v for v in range(-3, 12) if v not in field.choices])
    if field.lo is None:
        return None
    step = 1 if field.kind is int else 0.5
    return rng.choice([field.lo - step, field.hi + step, field.lo - 10**6 * step,
                       field.hi + 10**12 * step, -(2**70), 2**70]
                      + ([float("nan"), float("inf"), -float("inf")] if field.kind is float else []))


def _set(tree, section, key, value):
    (tree[section] if section else tree)[key] = value


def _mutate(base: dict, rng: random.Random):
    """One invalid mutation of ``base``: (what, text or bytes)."""
    tree = copy.deepcopy(base)
    is_float = tree.get("kind") == "float64"
    leaves = [] if is_float else _leaves(tree)
    sections = [k for k, v in tree.items() if isinstance(v, dict)]
    ops = ["unknown_top", "missing_top", "top_not_mapping", "yaml_syntax", "encoding",
           "wrong_kind"]
    if leaves:
        ops += ["wrong_type"] * 4 + ["out_of_range"] * 4 + ["unknown_in_section", "missing_leaf",
                                                            "section_not_mapping", "leaf_nested"]
    op = rng.choice(ops)
    if op == "wrong_type":
        s, k, f = rng.choice(leaves)
        if f.auto and rng.random() < 0.3:
            _set(tree, s, k, rng.choice(["AUTO", "auto ", "automatic"]))
        else:
            _set(tree, s, k, _wrong_type(f, rng))
    elif op == "out_of_range":
        s, k, f = rng.choice([lf for lf in leaves if lf[2].choices is not None or lf[2].lo is not None])
        _set(tree, s, k, _out_of_range(f, rng))
    elif op == "unknown_top":
        tree[rng.choice(["extra", "Traces", "name ", "weigths", "kind2"])] = rng.choice([1, "x", {"a": 1}])
    elif op == "missing_top":
        keys = [k for k in tree if k not in OPTIONAL_TOP]
        del tree[rng.choice(keys)]
    elif op == "top_not_mapping":
        return op, yaml.safe_dump(rng.choice([[tree], "just a string", 42, [1, 2, 3]]))
    elif op == "yaml_syntax":
        text = yaml.safe_dump(tree, sort_keys=False, width=10**6)
        lines = text.splitlines()
        keyed = [i for i, line in enumerate(lines) if re.match(r"^ *[a-z_]+:", line)]
        while True:     # a break inside a quoted string can still be valid YAML: retry
            i = rng.choice(keyed)
            broken = lines[:i] + [rng.choice(["\t" + lines[i], lines[i] + ": : :", "[" + lines[i],
                                              "---\n- a\n---\n- b", "key: 'unterminated",
                                              "&a [*b]", lines[i] + "\n  - x"])] + lines[i + 1:]
            text = "\n".join(broken) + "\n"
            try:
                yaml.safe_load(text)
            except yaml.YAMLError:
                return op, text
    elif op == "encoding":
        text = yaml.safe_dump(dict(tree, description="Kreutzer et al., café ümlaut"),
                              sort_keys=False, allow_unicode=True)
        how = rng.choice(["latin-1", "utf-16", "utf-32", "binary", "broken-utf8"])
        if how == "binary":
            return op, bytes(rng.randrange(256) for _ in range(rng.randrange(8, 400))) + b"\xff"
        if how == "broken-utf8":
            raw = text.encode("utf-8")
            i = rng.randrange(len(raw))
            return op, raw[:i] + b"\xc3\x28" + raw[i:]
        return op, text.encode(how)
    elif op == "wrong_kind":
        tree["kind"] = rng.choice(["fixed", "learning_engine", "float64", "Fixed", 3, None, ""])
        if tree["kind"] == base.get("kind"):
            tree["kind"] = "float32"
    elif op == "unknown_in_section":
        tree[rng.choice(sections)][rng.choice(["bitz", "extra", "frac2", "Rounding"])] = 3
    elif op == "missing_leaf":
        s, k, _ = rng.choice([lf for lf in leaves if lf[0] is not None])
        del tree[s][k]
    elif op == "section_not_mapping":
        tree[rng.choice(sections)] = rng.choice([[1, 2], "text", 7, None, True])
    elif op == "leaf_nested":
        s, k, _ = rng.choice(leaves)
        _set(tree, s, k, {"value": 1})
    return op, yaml.safe_dump(tree, sort_keys=False, allow_unicode=True)


def _cases(n, seed=20261130):
    rng = random.Random(seed)
    bases = [yaml.safe_load(p.read_text()) for p in bundled_configs()]
    return [(i,) + _mutate(rng.choice(bases), rng) for i in range(n)]


@pytest.fixture(scope="module")
def fuzz_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    files = []
    for i, op, content in _cases(N_CASES):
        p = folder / f"case{i:04d}.yaml"
        (p.write_bytes if isinstance(content, bytes) else p.write_text)(content)
        files.append((p, op))
    return files


def test_bundled_configs_still_load():
    for p in bundled_configs():
        load(p)


def test_fuzzed_configs_raise_one_line_config_error(fuzz_files):
    assert len(fuzz_files) >= 1000
    ops = set()
    for path, op in fuzz_files:
        try:
            load(path)
        except ConfigError as exc:
            msg = str(exc)
            assert msg and "\n" not in msg and "\r" not in msg, (op, path, msg)
            assert str(path) in msg, (op, msg)
            ops.add(op)
        else:
            pytest.fail(f"{op}: {path} was accepted:\n{path.read_bytes()[:2000]!r}")
    assert len(ops) >= 10          # every kind of mutation was exercised


@pytest.mark.timeout(300)
def test_fuzzed_configs_through_check_config(fuzz_files, capsys):
    """``natgrad check-config`` on a sample: the first N_PROCESS in a real process (exit code
    2, one stderr line, no traceback), the rest through the same ``main`` in this process
    (a process start costs about 6 s of imports)."""
    from natgrad.cli import main
    rng = random.Random(7)
    sample = rng.sample(fuzz_files, N_CLI)
    for n, (path, op) in enumerate(sample):
        if n < N_PROCESS:
            proc = subprocess.run([sys.executable, "-m", "natgrad.cli", "check-config",
                                   str(path)], capture_output=True, text=True, timeout=60)
            code, out, err = proc.returncode, proc.stdout, proc.stderr
        else:
            try:
                code = main(["check-config", str(path)])
            except SystemExit as exc:
                code = exc.code
            out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert code == 2, (op, err)
        assert len(lines) == 1 and lines[0].startswith("natgrad: error: "), (op, err)
        assert "Traceback" not in err and out == "", (op, err)
