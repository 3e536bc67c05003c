"""No silent skips: ``numba_available()`` says False only when numba is
not installed, and a skip for a missing numba / Lava is a failure (``tests/conftest.py``)."""
import sys

import pytest

from lava_procs import numba_available

pytest_plugins = ("pytester",)


def test_numba_available_is_true_here():
    assert numba_available()


def test_missing_numba_means_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)            # "not installed"
    monkeypatch.delitem(sys.modules, "emulator.kernels", raising=False)
    monkeypatch.delitem(sys.modules, "emulator.stages_jit", raising=False)
    assert numba_available() is False


def test_a_broken_kernel_module_is_an_error(monkeypatch):
    # an import problem that is not "numba is missing" propagates
    monkeypatch.setitem(sys.modules, "emulator.kernels", None)
    with pytest.raises(ImportError):
        numba_available()


def test_a_dependency_skip_fails_the_run(pytester):
    pytester.makeconftest(open(__file__.replace("test_no_silent_skips.py", "conftest.py")).read())
    pytester.makepyfile(test_x="""
        import pytest
        def test_kernel():
            pytest.skip("emulator.kernels unavailable")
        @pytest.mark.skipif(True, reason="Lava not installed")
        def test_lava():
            pass
        def test_other():
            pytest.skip("not a dependency")
    """)
    res = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    res.assert_outcomes(failed=1, errors=1, skipped=1)
