"""Progress tells the truth: the time still to go comes from the rate
measured in the run, never from a throughput constant, and nothing is promised before the
first chunk has reported."""
import io

import pytest

from natgrad.progress import Progress, human_time


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_estimate_comes_from_the_measured_rate():
    clock = Clock(1000.0)
    bar = Progress(1000, enabled=False, prefix="natgrad run", clock=clock)
    clock.t = 1005.0
    bar(0, "float64 approx")                  # nothing done yet: no estimate
    assert bar.rate() is None and bar.remaining() is None
    assert "left" not in bar._text()
    clock.t = 1010.0
    bar(100, "float64 approx")                # the first chunk, cold: 100 units in 10 s
    assert bar.rate() == pytest.approx(10.0)
    assert bar.remaining() == pytest.approx(90.0)
    clock.t = 1012.0
    bar(300)                                  # warm: 200 units in 2 s since the first chunk
    assert bar.rate() == pytest.approx(100.0)
    assert bar.remaining() == pytest.approx(7.0)
    clock.t = 1014.0                          # counts down between updates, never below 0
    assert bar.remaining() == pytest.approx(5.0)
    assert bar._text() == ("natgrad run: 14 s, 30.0% (300/1000), float64 approx, "
                           "about 5 s left")
    clock.t = 1100.0
    assert bar.remaining() == 0.0
    bar(300)                                  # an update that did not move changes nothing
    assert bar.rate() == pytest.approx(100.0)


def test_a_slower_machine_gets_a_longer_estimate():
    """Same progress, ten times the time: ten times the estimate (a constant would give
    the same answer on both)."""
    out = []
    for scale in (1.0, 10.0):
        clock = Clock(0.0)
        bar = Progress(600_000, enabled=False, clock=clock)
        for k in range(1, 4):
            clock.t = scale * 3.0 * k
            bar(k * 40_000)
        out.append(bar.remaining())
    assert out[1] == pytest.approx(10 * out[0])
    assert out[0] == pytest.approx((600_000 - 120_000) / (80_000 / 6.0))


def test_no_total_no_estimate_and_the_tty_line():
    clock = Clock(0.0)
    hb = Progress(None, enabled=False, clock=clock)
    clock.t = 3.0
    hb(5, "fig7")
    assert hb.remaining() is None and "left" not in hb._text()
    bar = Progress(100, enabled=False, stream=io.StringIO(), clock=clock)
    clock.t = 5.0
    bar(50, "x")
    assert "about 2 s left" in bar._line()


def test_human_time():
    assert human_time(14.2) == "14 s"
    assert human_time(600) == "10 min"
    assert human_time(3 * 3600) == "3.0 h"
