"""Writes that cannot half-happen.

A full disk is injected at the lowest layer every writer shares: a file opened for writing
(builtin ``open``, ``io.open`` and pathlib's opener, which matplotlib, json and numpy writes go
through) under the output (or cache) folder fails every non-empty write with ``ENOSPC``, as
a filling disk does (an empty probe of the folder still passes).  For ``run``, ``deploy``, ``sweep`` and a sharded
``experiment``, the command then prints exactly one line naming the path and the reason,
exits non-zero, and leaves the folder as it was: nothing when it did not exist, the old
files untouched when it did.  Before this, ``run --out`` on a full filesystem ended in a
41-line traceback.
"""
import builtins
import errno
import io
import os
import pathlib
from pathlib import Path

import pytest

from natgrad.cli import main


class _FullFile:
    """A file whose writes fail as on a full disk (empty writes, e.g. a probe, pass)."""

    def __init__(self, f, name):
        self._f, self._name = f, name

    def write(self, data):
        if len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self._name)
        return 0

    def __getattr__(self, attr):
        return getattr(self._f, attr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def _full_disk(monkeypatch, under: Path):
    """Every write to a file below ``under`` fails as on a full disk."""
    real_open = builtins.open
    under = str(under.resolve())

    def full(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        if (isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+")
                and str(Path(file).resolve()).startswith(under)):
            return _FullFile(f, str(file))
        return f

    monkeypatch.setattr(builtins, "open", full)
    monkeypatch.setattr(io, "open", full)
    if hasattr(pathlib, "_NormalAccessor"):      # Python 3.10's pathlib binds io.open early
        monkeypatch.setattr(pathlib._NormalAccessor, "open", staticmethod(full))


def _one_line(capsys, path: Path):
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("natgrad: error: cannot write ") and str(path) in lines[0]
    assert "No space left on device" in lines[0]


COMMANDS = {
    "run": ["run", "--steps", "400", "--trials", "1", "--lava-steps", "0", "--quiet"],
    "deploy": ["deploy", "--config", "loihi2", "--afferents", "16"],
    "sweep": ["sweep", "--vary", "weight_bits=8:9", "--seeds", "1", "--steps", "200",
              "--trials", "1", "--executor", "serial", "--quiet"],
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
@pytest.mark.parametrize("existed", [False, True])
def test_full_disk_leaves_old_content_or_nothing(name, existed, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    if existed and name != "deploy":          # deploy refuses a non-empty folder by design
        out.mkdir()
        (out / "report.json").write_text("old")
        (out / "sweep.json").write_text("old")
    _full_disk(monkeypatch, tmp_path)
    code = main(COMMANDS[name] + ["--out", str(out)])
    assert code == 1
    _one_line(capsys, tmp_path)
    if existed and name != "deploy":
        assert sorted(os.listdir(out)) == ["report.json", "sweep.json"]
        assert (out / "report.json").read_text() == "old"
    else:
        assert not out.exists()


def test_full_disk_in_a_sharded_experiment_keeps_no_partial_shard(tmp_path, monkeypatch,
                                                                  capsys):
    """The shard cache fills up: no temporary or partial shard stays, the output folder is
    not created, one line."""
    from natgrad.experiments.fig3 import FIG3F_PRESETS
    monkeypatch.setitem(FIG3F_PRESETS, "small",
                        dict(FIG3F_PRESETS["small"], T_s=3.0, eval_s=1.0,
                             late_window_s=(2.0, 3.0)))
    cache, out = tmp_path / "cache", tmp_path / "out"
    cache.mkdir()
    _full_disk(monkeypatch, cache)
    code = main(["experiment", "fig3f", "--config", "loihi2_ideal", "--trials", "2",
                 "--shard-trials", "1", "--cache", str(cache), "--out", str(out), "--quiet"])
    assert code == 1
    _one_line(capsys, cache)
    assert os.listdir(cache) == [] and not out.exists()
