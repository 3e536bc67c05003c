"""The README is tested: a stale snippet fails here.

Every fenced ``python`` block is run (at a tiny scale: integers of 4+ digits divided by 10; ``DIR``
is a real deployment folder), except the SLURM example, which needs ``dask_jobqueue`` and a
cluster and is only compiled.  Every ``natgrad ...`` command (indented block, continuation
lines joined, ``[...]`` optional parts dropped, placeholders filled) is parsed by the real
command-line parser, so a renamed or removed option fails; the main job's command is also
run at a tiny scale.  The two setup commands are what ``.ci/run`` runs.
"""
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()

#: Blocks that cannot run here, with why (compiled only).
NOT_RUN = {"dask_jobqueue": "needs dask_jobqueue (not a dependency) and a SLURM cluster"}


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.S)


def commands() -> list[str]:
    """``natgrad ...`` lines of the README's indented blocks, continuations joined."""
    out, lines, i = [], README.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("    natgrad "):
            cmd = line.strip()
            while cmd.endswith("\\") and i + 1 < len(lines):
                i += 1
                cmd = cmd[:-1].rstrip() + " " + lines[i].strip()
            out.append(cmd)
        i += 1
    # inline spans with arguments, e.g. `natgrad run [--config loihi2] [--steps N] ...`
    # (a bare `natgrad sweep` names the command, it is not one to run)
    out += [c for c in re.findall(r"`(natgrad [^`]+)`", README)
            if "..." not in c and "COMMAND" not in c and len(c.split()) > 2]
    return out


PLACEHOLDERS = {"DIR": None, "ADDR": "tcp://127.0.0.1:1", "FILE": "hw_configs/loihi2.yaml",
                "NAME": "fig4", "CFG": "loihi2"}


def test_the_readme_has_the_blocks_this_test_runs():
    # the count is part of the contract: a new block must be run here or listed in NOT_RUN
    assert len(python_blocks()) == 4
    assert len(commands()) >= 6
    assert "python -m pip install -q uv && python -m uv run --frozen pytest" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "uv run --frozen pytest" in ci


@pytest.mark.parametrize("k", range(4))
def test_python_block_runs(k, tmp_path, monkeypatch):
    code = python_blocks()[k]
    for needle, why in NOT_RUN.items():
        if needle in code:
            compile(code, f"README python block {k}", "exec")
            pytest.skip(f"compiled only: {why}")
    # integers of 4+ digits (not the digits after a decimal point, e.g. dt_s 0.0005)
    code = re.sub(r"(?<![.\d])(\d{4,})\b", lambda m: str(int(m.group(1)) // 10), code)
    if '"DIR"' in code:
        from natgrad.cli import main
        dep = tmp_path / "dep"
        assert main(["deploy", "--config", "loihi2", "--afferents", "16", "--out", str(dep)]) == 0
        code = code.replace('"DIR"', repr(str(dep)))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README python block {k}", "exec"), {"__name__": "readme"})


def _argv(cmd: str, tmp_path: Path) -> list[str]:
    cmd = re.sub(r"\s*\[[^\]]*\]", "", cmd)              # optional parts
    for word, value in PLACEHOLDERS.items():
        cmd = re.sub(rf"\b{word}\b", value or str(tmp_path / "dir"), cmd)
    return shlex.split(cmd)[1:]


def test_every_command_parses(tmp_path, monkeypatch):
    from natgrad.cli import build_parser
    monkeypatch.chdir(ROOT)
    parser = build_parser()

    def fail(message):
        raise AssertionError(message)
    parser.error = fail
    for action in parser._subparsers._group_actions:
        for sp in action.choices.values():
            sp.error = fail
    seen = set()
    for cmd in commands():
        if "--help" in cmd:
            with pytest.raises(SystemExit) as exc:
                parser.parse_args(_argv(cmd, tmp_path))
            assert exc.value.code == 0
            continue
        args = parser.parse_args(_argv(cmd, tmp_path))
        assert callable(args.func), cmd
        seen.add(_argv(cmd, tmp_path)[0] if _argv(cmd, tmp_path) else "")
    assert {"run", "sweep", "deploy", "budget", "experiment", "check-config"} <= seen, seen


def test_main_job_command_runs_at_a_tiny_scale(tmp_path, monkeypatch, capsys):
    from natgrad.cli import main
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--steps", "400", "--trials", "2", "--lava-steps", "50", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "verdict:" in out and "Lava cross-check" in out
