"""The command line never hangs, never prints a traceback and never leaves debris.

Bad input: one line on stderr, exit status 2, nothing written.  SIGINT during ``run``'s
Lava cross-check, ``sweep --executor local`` and ``experiment``: exit status 130 within
5 s, one line, no process left and no output folder.  Everything runs as a subprocess of
``python -m natgrad.cli``, as a user would.
"""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

psutil = pytest.importorskip("psutil")

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "natgrad.cli"]


def _cli(args, cwd, timeout=120):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


# --------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (d / "latin1.yaml").write_bytes("name: café\nkind: float64\n".encode("latin-1"))
    # task files: each broken in one key
    fig3 = (ROOT / "tasks" / "fig3.yaml").read_text()
    for name, old, new in TASK_BREAKS:
        assert old in fig3, old
        (d / f"task_{name}.yaml").write_text(fig3.replace(old, new))
    (d / "task_notyaml.yaml").write_text("name: [unclosed\n")
    (d / "task_ratio.yaml").write_text(fig3.replace("rate_hz: 10.0", "rate_hz: 0.1")
                                       .replace("rate_hz: 50.0", "rate_hz: 100.0"))
    return d


#: (name, text in tasks/fig3.yaml, replacement)
TASK_BREAKS = [
    ("count", "count: 50, rate_hz: 10.0", "count: -3, rate_hz: 10.0"),
    ("rate", "rate_hz: 50.0", "rate_hz: 3000.0"),
    ("outputs", "outputs: 1", "outputs: 0"),
    ("dist", "distribution: uniform, low: -1.0, high: 1.0, scale: 1/N}\ninitial",
     "distribution: lognormal}\ninitial"),
    ("rule", "rule: approx", "rule: hebb"),
    ("lr", "learning_rate: {scale_of_paper: 4.0}", "learning_rate: {code: 7}"),
    ("key", "outputs: 1", "outputs: 1\ncolour: red"),
    ("neuron", "neuron: {}", "neuron: {tau_s: 0.02}"),
    ("trials", "trials: 4", "trials: 0"),
]


BAD = [
    (["check-config", "{d}/binary.yaml"], "not a UTF-8 text file"),
    (["run", "--config", "{d}/latin1.yaml", "--out", "{d}/o1"], "not a UTF-8 text file"),
    (["run", "--steps", "0"], "--steps must be an integer >= 1"),
    (["run", "--seed", str(2**70)], "--seed must be an integer in [0, 2**64 - 1]"),
    (["run", "--seed", "-1"], "--seed must be an integer in [0, 2**64 - 1]"),
    (["run", "--steps", str(10**12), "--out", "{d}/o2"], "would run for about"),
    (["run", "--trials", str(10**9), "--out", "{d}/o3"], "of memory"),
    (["sweep", "--vary", "weight_bits=8:9", "--seeds", str(10**9), "--out", "{d}/o4"], "of memory"),
    (["sweep", "--vary", "weight_bits=8:9", "--steps", "0", "--out", "{d}/o5"],
     "--steps must be an integer >= 1"),
    (["run", "--out", ""], "--out: empty path"),
    (["deploy", "--rates", "-10,50", "--out", "{d}/d1.yaml"], "each rate must be a finite number >= 0"),
    (["deploy", "--afferents", "3", "--out", "{d}/d2.yaml"], "not divisible into 2 equal-size groups"),
    (["deploy", "--rates=0,0", "--out", "{d}/d3.yaml"], "at least one rate must be > 0"),
    (["deploy", "--out", ""], "--out: empty path"),
    (["experiment", "fig7", "--seed", str(2**64)], "--seed must be an integer in [0, 2**64 - 1]"),
    (["check-config", "/dev/zero"], "not a regular file"),
    (["sweep", "--vary", "weight_bits=1:1000000000"], "at most 256 per field"),
    (["sweep", "--vary", "weight_bits=2:48", "--vary", "trace_bits=2:32", "--vary",
      "decay_bits=4:24"], "grid points, at most"),
    # task files: every command that takes --task, one broken key each
    (["run", "--task", "{d}/task_count.yaml", "--out", "{d}/o6"], "'afferents.groups[0].count'"),
    (["run", "--task", "{d}/task_rate.yaml", "--out", "{d}/o7"], "'afferents.groups[1].rate_hz'"),
    (["run", "--task", "{d}/task_outputs.yaml", "--out", "{d}/o8"], "'outputs'"),
    (["sweep", "--vary", "weight_bits=8:9", "--task", "{d}/task_dist.yaml", "--out", "{d}/o9"],
     "'teacher.weights.distribution'"),
    (["budget", "--task", "{d}/task_rule.yaml", "--out", "{d}/o10"], "'rule'"),
    (["deploy", "--task", "{d}/task_lr.yaml", "--out", "{d}/o11"], "'learning_rate.code'"),
    (["run", "--task", "{d}/task_key.yaml", "--out", "{d}/o12"], "'colour'"),
    (["run", "--task", "{d}/task_neuron.yaml", "--out", "{d}/o13"], "'neuron'"),
    (["budget", "--task", "{d}/task_trials.yaml", "--out", "{d}/o14"], "'protocol.trials'"),
    (["run", "--task", "{d}/task_notyaml.yaml", "--out", "{d}/o15"], "not valid YAML"),
    (["run", "--task", "no_such_task", "--out", "{d}/o16"], "bundled: fig3"),
    (["run", "--task", "{d}/task_ratio.yaml", "--out", "{d}/o17"],
     "rate ratio 1e+03:1"),
    (["deploy", "--task", "{d}/task_ratio.yaml", "--out", "{d}/o18"], "tags"),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("args, needle", BAD, ids=[" ".join(a)[:40] for a, _ in BAD])
def test_bad_input_one_line_exit_2(args, needle, bad_files, tmp_path):
    args = [a.replace("{d}", str(bad_files)) for a in args]
    proc = _cli(args, cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("natgrad: error: "), proc.stderr
    assert needle in lines[0] and "Traceback" not in proc.stderr
    assert not any(bad_files.glob("o*")) and not any(bad_files.glob("d*.yaml"))
    assert not any(tmp_path.iterdir())          # nothing written in the working folder


# --------------------------------------------------------------------------- interrupts
def _descendants_and_strays(pid, marker):
    """Descendants of ``pid`` (None: none) and processes whose command line has ``marker``."""
    found = set()
    try:
        if pid is not None:
            found |= {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.Error:
        pass
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if p.info["pid"] != os.getpid() and marker in " ".join(p.info["cmdline"] or []):
                found.add(p.info["pid"])
        except psutil.Error:
            pass
    return found


def _alive(pids):
    out = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.Error:
            pass
    return out


def _interrupt(args, stage, tmp_path, after_s=1.0, sig=signal.SIGINT, group=True):
    """Start the CLI in its own session, wait for ``stage`` on stderr (plus ``after_s``),
    send ``sig`` to its process group (like Ctrl-C in a terminal); return
    (returncode, seconds to exit, stderr after the signal, pids seen before the signal)."""
    proc = subprocess.Popen(CLI + [str(a) for a in args], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    seen, err = threading.Event(), []

    def read():
        for line in proc.stderr:
            err.append(line)
            if stage in line:
                seen.set()
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    try:
        assert seen.wait(90), f"never reached {stage!r}: {''.join(err)}"
        time.sleep(after_s)
        assert proc.poll() is None, "finished before the signal: make the job longer"
        pids = _descendants_and_strays(proc.pid, str(tmp_path))
        n_before = len(err)
        t0 = time.time()
        os.killpg(proc.pid, sig) if group else proc.send_signal(sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        dt = time.time() - t0
        reader.join(timeout=5)
        return proc.returncode, dt, "".join(err[n_before:]), pids
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _assert_clean(code, dt, err, pids, out, tmp_path, expect=130):
    assert code == expect, err
    assert dt < 5.0, f"took {dt:.1f} s"
    assert err.strip().splitlines() == [f"natgrad: {'terminated' if expect == 143 else 'interrupted'}"], err
    assert "Traceback" not in err
    deadline = time.time() + 3          # the resource tracker exits once its pipe closes
    while _alive(pids | _descendants_and_strays(None, str(tmp_path))) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(pids | _descendants_and_strays(None, str(tmp_path)))
    assert not out.exists()


@pytest.mark.timeout(60)
def test_sigint_during_lava_crosscheck(tmp_path):
    out = tmp_path / "rep"
    res = _interrupt(["run", "--steps", "20000", "--trials", "1", "--lava-steps", "20000",
                      "--out", out], "Lava cross-check", tmp_path, after_s=2.0)
    assert len(res[3]) >= 3, "the Lava runtime's processes were not running"
    _assert_clean(*res, out, tmp_path)


@pytest.mark.timeout(60)
def test_sigterm_during_lava_crosscheck_keeps_existing_out(tmp_path):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "old.txt").write_text("old")
    code, dt, err, pids = _interrupt(["run", "--steps", "20000", "--trials", "1", "--lava-steps",
                                      "20000", "--out", out], "Lava cross-check", tmp_path,
                                     after_s=2.0, sig=signal.SIGTERM)
    assert len(pids) >= 3, "the Lava runtime's processes were not running"
    _assert_clean(code, dt, err, pids, tmp_path / "nothing", tmp_path, expect=143)
    assert sorted(os.listdir(out)) == ["old.txt"] and (out / "old.txt").read_text() == "old"


@pytest.mark.timeout(60)
def test_sigint_during_local_sweep(tmp_path):
    out = tmp_path / "sw"
    res = _interrupt(["sweep", "--vary", "weight_bits=8:12", "--seeds", "2", "--steps", "40000",
                      "--executor", "local", "--out", out], "runs on executor", tmp_path,
                     after_s=3.0)
    _assert_clean(*res, out, tmp_path)


@pytest.mark.timeout(60)
def test_sigint_during_experiment(tmp_path):
    res = _interrupt(["experiment", "fig7"], "scale small", tmp_path, after_s=2.0)
    # the default --out natgrad-experiments/fig7 is removed with its new parent
    _assert_clean(*res, tmp_path / "natgrad-experiments", tmp_path)
