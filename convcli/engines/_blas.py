"""Hold every BLAS of the process to one thread while the worker pool runs.

The strategies split their work over a pool of threads (one per core) and
call BLAS from each. If OpenBLAS also used its own threads, the two kinds
would fight: on this machine a ``(61440×27)@(27×8)`` product took 0.4 ms
with one BLAS thread and 16–32 ms (thread wake-ups) with two, whether
called from the main thread or from the pool (``/tmp`` micro-benchmark of
issue 5).

The BLAS libraries are found and limited by threadpoolctl (every BLAS it
knows: OpenBLAS, MKL, BLIS, …, including the private OpenBLAS copies of the
scipy and OpenCV wheels). threadpoolctl is imported on the first use, not
with the package (it costs ~20 ms of start-up), and its scan of the loaded
libraries (~1–3 ms) is redone only when modules were imported since the
last one (a later ``import scipy`` loads another OpenBLAS).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["blas_libraries", "single_threaded_blas"]


class _Controller:
    """The threadpoolctl controller, when it was made, and how many callers hold one thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.controller: Any = None
        self.modules_seen = -1
        self.depth = 0
        self.limiter: Any = None


_CONTROL = _Controller()


def _blas_controller() -> Any:
    """The threadpoolctl controller restricted to BLAS libraries (rescanned after new imports)."""
    control = _CONTROL
    if control.controller is None or control.modules_seen != len(sys.modules):
        from threadpoolctl import ThreadpoolController

        control.modules_seen = len(sys.modules)
        control.controller = ThreadpoolController().select(user_api="blas")
    return control.controller


def blas_libraries() -> list[dict[str, Any]]:
    """threadpoolctl's description of every BLAS loaded (``filepath``, ``num_threads``, …)."""
    with _CONTROL.lock:
        return _blas_controller().info()


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Within the block, every BLAS of the process uses one thread (re-entrant, thread-safe).

    The outermost block limits the libraries and restores their previous
    thread counts on exit; nested blocks (from any thread) only count.
    """
    control = _CONTROL
    with control.lock:
        if control.depth == 0:
            control.limiter = _blas_controller().limit(limits=1)
        control.depth += 1
    try:
        yield
    finally:
        with control.lock:
            control.depth -= 1
            if control.depth == 0:
                control.limiter.restore_original_limits()
                control.limiter = None
