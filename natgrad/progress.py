"""Progress output of the long commands, on stderr.

On a terminal: one status line redrawn in place (a bar when the total is known).
Otherwise (a pipe, a log file, a batch job): one line every :data:`EVERY_S` seconds, so
logs stay short.  A background thread draws, so the output keeps coming while a phase
without callbacks runs.  Stage names (work that is not a simulation: the Lava
cross-check, writing the report) are printed as lines at once in both cases.  Nothing is
printed once the command is interrupted (:mod:`natgrad.interrupt`).

With a known total the line also says how long the rest will take, from the rate measured
in this run (:meth:`Progress.rate`): none before the first chunk has reported, then the
first chunk's rate (cold: set-up and compilation included), then the rate since that first
chunk (warm).  No throughput constant is involved.
"""
from __future__ import annotations

import sys
import threading
import time

#: Seconds between progress lines when stderr is not a terminal.
EVERY_S = 10.0
#: Seconds between redraws on a terminal.
TTY_EVERY_S = 0.5


class Progress:
    """Progress of ``total`` units of work (None: unknown), labelled ``prefix``.

    Call it with the units done and a label; :meth:`status` sets the label only;
    :meth:`stage` prints a stage line; :meth:`close` (or leaving the ``with`` block)
    stops the output.

    Parameters
    ----------
    total : units of work (steps, runs), or None when unknown (elapsed time only)
    enabled : False prints nothing (``--quiet``)
    prefix : start of every line, e.g. ``natgrad run``
    every_s : seconds between lines when the stream is not a terminal
    stream : default ``sys.stderr``
    clock : seconds now (default ``time.time``; tests pass a fake one)
    """

    def __init__(self, total: int | None, enabled: bool = True, prefix: str = "natgrad",
                 every_s: float = EVERY_S, stream=None, clock=time.time):
        self.stream = stream if stream is not None else sys.stderr
        self.total = None if total is None else max(int(total), 1)
        self.enabled, self.prefix = enabled, prefix
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every_s = every_s
        self.clock = clock
        self.t0 = clock()
        self._first = None        # (time, done) of the first update that reported work
        self._last = None         # (time, done) of the latest update that moved
        self.done, self.label = 0, ""
        self._drawn = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        if enabled:
            self._thread = threading.Thread(target=self._loop, name="natgrad-progress",
                                            daemon=True)
            self._thread.start()

    # ------------------------------------------------------------------ updates
    def __call__(self, done: int, label: str = "") -> None:
        if done > 0 and (self._last is None or done != self._last[1]):
            now = self.clock()
            if self._first is None:
                self._first = (now, done)
            self._last = (now, done)
        self.done = done
        if label:
            self.label = label

    def rate(self) -> float | None:
        """Units per second measured in this run: between the first and the latest update
        that reported work (warm), or with one such update from the start to it (cold: the
        set-up and compilation included); None before any work was reported."""
        if self._last is None:
            return None
        (t1, d1), (t2, d2) = self._first, self._last
        if d2 > d1 and t2 > t1:
            return (d2 - d1) / (t2 - t1)
        return d1 / (t1 - self.t0) if t1 > self.t0 else None

    def remaining(self) -> float | None:
        """Seconds still to go at the measured :meth:`rate` (counted down since the latest
        update); None without a total or before the first chunk has reported."""
        r = self.rate()
        if self.total is None or r is None or r <= 0:
            return None
        left = (self.total - self.done) / r - (self.clock() - self._last[0])
        return max(left, 0.0)

    def status(self, label: str) -> None:
        self.label = label

    def stage(self, name: str) -> None:
        """Announce a stage of work that is not counted in units (one line)."""
        if not self.enabled:
            return
        self.label = name
        with self._lock:
            if self.tty and self._drawn:
                self._write("\r\033[K")
                self._drawn = False
            self._write(f"{self.prefix}: {name}\n")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
        with self._lock:
            if self.enabled and self.tty and self._drawn:
                if self.total is not None:
                    self.done = self.total
                self._write(self._line() + "\n")
                self._drawn = False
            self.enabled = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ------------------------------------------------------------------ drawing
    def _left(self) -> str:
        left = self.remaining()
        return "" if left is None else f"about {human_time(left)} left"

    def _line(self) -> str:
        elapsed = self.clock() - self.t0
        label = self.label[:40]
        if self.total is None:
            return f"\r  {elapsed:6.0f} s  {label:<40s}"
        frac = min(self.done / self.total, 1.0)
        return (f"\r  [{'#' * int(30 * frac):<30s}] {100 * frac:5.1f}%  {elapsed:6.0f} s  "
                f"{self._left():<20s} {label:<40s}")

    def _text(self) -> str:
        elapsed = self.clock() - self.t0
        head = f"{self.prefix}: {elapsed:.0f} s"
        if self.total is not None:
            head += f", {100 * min(self.done / self.total, 1.0):.1f}% ({self.done}/{self.total})"
        left = self._left()
        return head + (f", {self.label}" if self.label else "") + (f", {left}" if left else "")

    def _loop(self) -> None:
        from natgrad import interrupt
        period = TTY_EVERY_S if self.tty else self.every_s
        while not self._stop.wait(period):
            if interrupt.interrupted():
                return
            with self._lock:
                if not self.enabled:
                    return
                if self.tty:
                    self._write(self._line())
                    self._drawn = True
                else:
                    self._write(self._text() + "\n")

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):       # stderr closed: progress is optional
            self.enabled = False


def human_time(seconds: float) -> str:
    """A duration for people: seconds below 2 min, minutes below 2 h, else hours."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def Heartbeat(prefix: str, enabled: bool = True, **kw) -> Progress:
    """Progress without a known total: elapsed time and the current activity."""
    return Progress(None, enabled, prefix, **kw)
