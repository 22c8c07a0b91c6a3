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
    """The located setter/getter and how many callers hold one thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loaded = False
        self.setter: Callable[[int], object] | None = None
        self.getter: Callable[[], int] | None = None
        self.depth = 0
        self.saved = 1


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
    paths: list[str] = []
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            for line in maps:
                name = line.rsplit(None, 1)[-1]
                if "openblas" in name.lower() and name.startswith("/") and name not in paths:
                    paths.append(name)
    except OSError:
        pass
    import numpy

    root = os.path.dirname(os.path.dirname(numpy.__file__))
    for pattern in ("numpy.libs/*openblas*", "numpy/.dylibs/*openblas*"):
        paths.extend(glob.glob(os.path.join(root, pattern)))
    return paths


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
            _CONTROL.setter, _CONTROL.getter = setter, getter
            return


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Within the block, OpenBLAS uses one thread (re-entrant, thread-safe)."""
    control = _CONTROL
    with control.lock:
        if not control.loaded:
            _load()
        if control.setter is not None and control.getter is not None:
            if control.depth == 0:
                control.saved = control.getter()
                control.setter(1)
            control.depth += 1
    try:
        yield
    finally:
        with control.lock:
            if control.setter is not None:
                control.depth -= 1
                if control.depth == 0:
                    control.setter(control.saved)
