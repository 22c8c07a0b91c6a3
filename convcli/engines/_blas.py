"""Hold numpy's OpenBLAS to one thread while the worker pool runs.

The strategies split their work over a pool of threads (one per core) and
call BLAS from each. If OpenBLAS also used its own threads, the two kinds
would fight: on this machine a ``(61440×27)@(27×8)`` product took 0.4 ms
with one BLAS thread and 16–32 ms (thread wake-ups) with two, whether
called from the main thread or from the pool (``/tmp`` micro-benchmark of
issue 5). threadpoolctl does this in general; to stay free of that
dependency this module finds the OpenBLAS that numpy loaded and calls its
``*_set_num_threads`` through ctypes. When no OpenBLAS is found (another
BLAS, another OS) it does nothing.
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["single_threaded_blas"]



class _Controller:
    """The located setters/getters and how many callers hold one thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loaded = False
        self.libraries: list[tuple[Callable[[int], object], Callable[[], int]]] = []
        self.depth = 0
        self.saved: list[int] = []


_CONTROL = _Controller()

_SETTERS = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)
_GETTERS = (
    "scipy_openblas_get_num_threads64_",
    "scipy_openblas_get_num_threads",
    "openblas_get_num_threads64_",
    "openblas_get_num_threads",
)


def _candidate_paths() -> list[str]:
    """Every OpenBLAS in the process, numpy's own first.

    scipy (and OpenCV) wheels carry OpenBLAS copies of their own; whichever
    was loaded first used to be the one found, so after ``import scipy.fft``
    numpy's BLAS kept its threads inside the pool (W2 ``gemm`` 2.1 s instead
    of 0.13 s). All of them are held to one thread now.
    """
    import numpy

    root = os.path.dirname(os.path.dirname(numpy.__file__))
    paths: list[str] = []
    for pattern in ("numpy.libs/*openblas*", "numpy/.dylibs/*openblas*"):
        paths.extend(sorted(glob.glob(os.path.join(root, pattern))))
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            for line in maps:
                name = line.rsplit(None, 1)[-1]
                if "openblas" in name.lower() and name.startswith("/"):
                    paths.append(name)
    except OSError:
        pass
    unique: list[str] = []
    for path in paths:
        real = os.path.realpath(path)
        if real not in unique:
            unique.append(real)
    return unique


def _load() -> None:
    _CONTROL.loaded = True
    for path in _candidate_paths():
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        setter = next((getattr(library, n) for n in _SETTERS if hasattr(library, n)), None)
        getter = next((getattr(library, n) for n in _GETTERS if hasattr(library, n)), None)
        if setter is not None and getter is not None:
            setter.argtypes = [ctypes.c_int]
            getter.restype = ctypes.c_int
            _CONTROL.libraries.append((setter, getter))


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Within the block, every OpenBLAS of the process uses one thread (re-entrant, thread-safe)."""
    control = _CONTROL
    with control.lock:
        if not control.loaded:
            _load()
        if control.depth == 0:
            control.saved = [getter() for _, getter in control.libraries]
            for setter, _ in control.libraries:
                setter(1)
        control.depth += 1
    try:
        yield
    finally:
        with control.lock:
            control.depth -= 1
            if control.depth == 0:
                for (setter, _), saved in zip(control.libraries, control.saved):
                    setter(saved)
