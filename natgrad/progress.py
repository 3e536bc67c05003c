"""Progress output of the long commands, on stderr.

On a terminal: a bar redrawn in place.  Otherwise (a pipe, a log file, a batch job): one
line every :data:`EVERY_S` seconds, so logs stay short.  Stage names (work that is not a
simulation: the Lava cross-check, writing the report) are printed as lines in both cases.
"""
from __future__ import annotations

import sys
import time

#: Seconds between progress lines when stderr is not a terminal.
EVERY_S = 10.0


class Progress:
    """Progress of ``total`` units of work, labelled ``prefix``.

    Parameters
    ----------
    total : units of work (steps, runs); at least 1 is assumed
    enabled : False prints nothing (``--quiet``)
    prefix : start of every line, e.g. ``natgrad run``
    every_s : seconds between lines when stderr is not a terminal
    """

    def __init__(self, total: int, enabled: bool = True, prefix: str = "natgrad",
                 every_s: float = EVERY_S, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.total, self.enabled, self.prefix = max(int(total), 1), enabled, prefix
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every_s = every_s
        self.t0 = self._last = time.time()
        self._drawn = False
        self.done, self.label = 0, ""

    def __call__(self, done: int, label: str = "") -> None:
        if not self.enabled:
            return
        self.done, self.label = done, label or self.label
        now = time.time()
        if self.tty:
            if now - self._last >= 0.1 or done >= self.total:
                self._last = now
                self._draw(now)
        elif now - self._last >= self.every_s:
            self._last = now
            self._write(f"{self.prefix}: {self._status(now)}\n")

    def _status(self, now: float) -> str:
        frac = min(self.done / self.total, 1.0)
        return (f"{100 * frac:5.1f}% ({self.done}/{self.total}), {now - self.t0:.0f} s"
                + (f", {self.label}" if self.label else ""))

    def _draw(self, now: float) -> None:
        frac = min(self.done / self.total, 1.0)
        bar = "#" * int(30 * frac)
        self._write(f"\r  [{bar:<30s}] {100 * frac:5.1f}%  {now - self.t0:6.1f} s "
                    f"{self.label[:32]:<32s}")
        self._drawn = True

    def stage(self, name: str) -> None:
        """Announce a stage of work that is not counted in units (one line)."""
        if not self.enabled:
            return
        self.label = name
        if self.tty and self._drawn:
            self._write("\r\033[K")
            self._drawn = False
        self._write(f"{self.prefix}: {name}\n")
        self._last = time.time() if not self.tty else 0.0

    def close(self) -> None:
        if self.enabled and self.tty and self._drawn:
            self._write("\n")
            self._drawn = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):       # stderr closed: progress is optional
            self.enabled = False


class Heartbeat:
    """Progress of work without a known total: the elapsed time and the current activity.

    A daemon thread redraws one line on a terminal (every 0.5 s) or prints a line every
    ``every_s`` seconds otherwise.  :meth:`status` sets the activity text; :meth:`stage`
    prints a stage line at once.  Use as a context manager.
    """

    def __init__(self, prefix: str, enabled: bool = True, every_s: float = EVERY_S, stream=None):
        import threading
        self._bar = Progress(1, enabled, prefix, every_s, stream)
        self._text = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="natgrad-progress", daemon=True)

    def __enter__(self):
        if self._bar.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)
        self._bar.close()
        return False

    def status(self, text: str) -> None:
        self._text = text

    def stage(self, name: str) -> None:
        self._bar.stage(name)

    def _loop(self) -> None:
        b = self._bar
        period = 0.5 if b.tty else b.every_s
        while not self._stop.wait(period):
            elapsed = time.time() - b.t0
            if b.tty:
                b._write(f"\r  {elapsed:6.0f} s  {self._text[:60]:<60s}")
                b._drawn = True
            else:
                b._write(f"{b.prefix}: {elapsed:.0f} s" + (f", {self._text}" if self._text else "")
                         + "\n")
