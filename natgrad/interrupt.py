"""Clean interrupts for the command line: SIGINT / SIGTERM end a command within seconds.

:func:`install` (called first thing by :func:`natgrad.cli.main`) turns SIGINT into
``KeyboardInterrupt`` and SIGTERM into :class:`Terminated` (a ``KeyboardInterrupt``), so the
``finally:`` blocks that stop Lava runtimes, process pools and Dask clusters run for both.
The first signal also starts a watchdog: if cleanup or interpreter exit still runs
:data:`DEADLINE_S` seconds later, it kills this process's descendants, removes the outputs
registered with :func:`track_output` and ends the process with ``os._exit``.

Child processes do not handle the terminal's SIGINT themselves (the parent stops them):
* forked children (Lava's runtime processes) inherit the handler, which ignores SIGINT and
  SIGTERM in any process other than the one that installed it;
* spawned children (process-pool and Dask workers) are started inside
  :func:`children_ignore_sigint`, so they inherit a blocked or ignored SIGINT.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

#: Seconds from the first signal until the watchdog forces the exit (the contract is 5 s).
DEADLINE_S = 3.5
#: Seconds a descendant gets between SIGTERM and SIGKILL during normal cleanup.
GRACE_S = 1.0

_TRACKER_WARNING = "ignore:resource_tracker:UserWarning"
_main_pid: int | None = None
_signum: int | None = None
_lock = threading.Lock()
_announced = False
#: (path, existed before, names inside before) of every output folder of this command
_outputs: list[tuple[Path, bool, frozenset]] = []


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM (a KeyboardInterrupt, so the same cleanup runs)."""


def install() -> None:
    """Install the SIGINT / SIGTERM handlers in this (the main) process."""
    global _main_pid, _signum, _announced
    _main_pid, _signum, _announced = os.getpid(), None, False
    # The resource tracker (started later, with these warning options) unlinks the shared
    # memory of a Lava runtime killed by the watchdog; its warning about that is noise
    # after an interrupt.
    if _TRACKER_WARNING not in sys.warnoptions:
        sys.warnoptions.append(_TRACKER_WARNING)
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)


def ignore_signals() -> None:
    """The command has finished (its outputs are complete): ignore SIGINT / SIGTERM during
    interpreter exit, so the exit status stays the command's."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _handler(signum, frame):
    if os.getpid() != _main_pid:
        # A forked child (a Lava runtime process) got the signal sent to the whole process
        # group: the parent stops it through Lava (or kills it, SIGKILL, as a last resort).
        return
    if _signum is not None:          # already interrupted: cleanup is under way
        return
    _set_signal(signum)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _set_signal(signum: int) -> None:
    global _signum
    _signum = signum
    threading.Thread(target=_watchdog, name="natgrad-watchdog", daemon=True).start()


def interrupted() -> bool:
    """True once SIGINT or SIGTERM has reached this process (cleanup under way)."""
    return _signum is not None


def exit_code() -> int:
    """130 after SIGINT (or a KeyboardInterrupt without a signal), 143 after SIGTERM."""
    return 128 + (_signum or signal.SIGINT)


def _watchdog() -> None:
    time.sleep(DEADLINE_S)
    if os.environ.get("NATGRAD_DEBUG_HANG"):   # every thread's stack: what cleanup waited on
        import faulthandler
        faulthandler.dump_traceback(all_threads=True)
    kill_descendants(grace=0.0)
    discard_outputs()
    announce()
    os._exit(exit_code())


def announce() -> None:
    """Print the one line ``natgrad: interrupted`` (once)."""
    global _announced
    with _lock:
        if _announced:
            return
        _announced = True
    try:
        sys.stdout.flush()
    except Exception:  # noqa: BLE001 - a closed pipe must not hide the message
        pass
    what = "terminated" if _signum == signal.SIGTERM else "interrupted"
    os.write(2, f"natgrad: {what}\n".encode())


def finish() -> int:
    """Cleanup after an interrupt reached :func:`natgrad.cli.main`; returns the exit status."""
    if _main_pid == os.getpid():     # only the process that installed the handlers
        if _signum is None:          # KeyboardInterrupt raised without our handler: same rules
            _set_signal(signal.SIGINT)
        kill_descendants(grace=GRACE_S)
    discard_outputs()
    announce()
    return exit_code()


def hard_exit(code: int) -> None:
    """End the process now (stdio flushed, exit handlers skipped: cleanup is done)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


# ---------------------------------------------------------------------------- child processes
@contextlib.contextmanager
def children_ignore_sigint(from_other_threads: bool = False):
    """Start worker processes with SIGINT blocked, so that they inherit it blocked: a Ctrl-C
    reaches only this process, which stops them.  A SIGINT that arrives meanwhile stays
    pending and is delivered on exit from the block.

    With ``from_other_threads`` (Dask starts its workers from its own threads, which do not
    share this thread's signal mask) SIGINT is *ignored* process-wide instead, which every
    child inherits; a SIGINT during the block is then lost, so keep the block short.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN) if from_other_threads else None
    try:
        yield
    finally:
        if handler is not None:
            signal.signal(signal.SIGINT, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def ignore_sigint() -> None:
    """Initializer for pool workers (belt and braces with :func:`children_ignore_sigint`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _descendants() -> list:
    try:
        import psutil
    except ImportError:              # pragma: no cover - psutil is a dependency of dask
        return []
    try:
        procs = psutil.Process().children(recursive=True)
    except psutil.Error:
        return []
    out = []
    for p in procs:
        try:
            # The resource tracker ignores signals and exits by itself when its pipe closes
            # (with this process); it unlinks leaked shared memory on the way.
            if "resource_tracker" in " ".join(p.cmdline()):
                continue
        except psutil.Error:
            continue
        out.append(p)
    return out


def kill_descendants(grace: float = GRACE_S) -> None:
    """SIGTERM every descendant process (found before any dies, so orphans are included),
    SIGKILL those still alive after ``grace`` seconds."""
    procs = _descendants()
    if not procs:
        return
    import psutil
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.terminate() if grace > 0 else p.kill()
    # Forked Lava processes ignore SIGTERM (see _handler): SIGKILL follows after ``grace``.
    _, alive = psutil.wait_procs(procs, timeout=grace if grace > 0 else 0.5)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=0.5)


# ---------------------------------------------------------------------------- outputs
def track_output(path: Path) -> None:
    """Remember an output folder before anything is written to it: on failure or interrupt
    :func:`discard_outputs` removes it if it is new, or the entries added to it if not."""
    path = Path(path)
    existed = path.is_dir()
    names = frozenset(os.listdir(path)) if existed else frozenset()
    if not existed:
        # mkdir(parents=True) may create parents too: remove from the topmost new one
        top = path.absolute()
        while not top.parent.exists() and top.parent != top:
            top = top.parent
        path = top
    with _lock:
        _outputs.append((path, existed, names))


def keep_outputs() -> None:
    """The command finished: its outputs stay."""
    with _lock:
        _outputs.clear()


def discard_outputs() -> None:
    """Remove what the command created in its tracked output folders."""
    with _lock:
        items = list(_outputs)
        _outputs.clear()
    for path, existed, names in items:
        if not existed:
            shutil.rmtree(path, ignore_errors=True)
            continue
        with contextlib.suppress(OSError):
            for name in set(os.listdir(path)) - names:
                p = path / name
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        p.unlink()
