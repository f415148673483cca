"""layerkit._blas_threads: the BLAS thread count that decides whether small products run in pieces."""
import ctypes

import pytest

from layerkit import _blas_threads
from layerkit import _core as core


def test_the_getter_reads_scipys_openblas_thread_count():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    address = _blas_threads.num_threads_getter()
    if not address:
        pytest.skip("scipy's BLAS here is not an OpenBLAS threadpoolctl can tell apart")
    count = ctypes.CFUNCTYPE(ctypes.c_int)(address)
    with threadpoolctl.threadpool_limits(1):
        assert count() == 1 == core.small_batch_blas_threads()
    assert count() == core.small_batch_blas_threads() >= 1


def test_without_threadpoolctl_the_products_stay_whole(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_threadpoolctl(name, *args, **kwargs):
        if name == "threadpoolctl":
            raise ImportError("no threadpoolctl")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_threadpoolctl)
    assert _blas_threads.num_threads_getter() == 0
