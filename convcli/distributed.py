"""Scale out: a batch on several processes, one large image in chunks on Dask, a batch on a cluster.

Every executor runs the same :class:`convcli.job.Job` (frozen, picklable, no
open resources) and yields one :class:`Outcome` per input, in the order the
inputs finish; the caller reports them exactly as a sequential run does.

``jobs == 1``, no scheduler
    In this process, one input after the other (:func:`convcli.job.run`).
``jobs == N`` (``--jobs``; 0 = one per core)
    A standard-library process pool (``spawn``), one task per file:
    ``run(job, path, destination)``. Each worker's engine thread pool has
    ``max(1, cores // N)`` threads (``CONVCLI_THREADS``; BLAS likewise), so
    workers × threads ≤ cores (unless ``CONVCLI_THREADS`` is set already);
    glibc keeps the memory a worker frees for its next file
    (:func:`_keep_freed_memory`: no page faults on every file's buffers again),
    and a worker sent home leaves without the interpreter's teardown.
    Workers ignore SIGINT; on Ctrl-C (or any exception in the caller) the
    parent cancels the files not started and sends SIGTERM to the workers,
    whose handler unwinds the running job (its sinks' abort removes their
    temporary files) and exits; the parent waits for them. A worker that
    dies (out of memory, killed) breaks the pool: the files it took down are
    retried once on a new pool, then reported failed.
``scheduler`` (``--scheduler threads|processes|ADDRESS``)
    Dask, imported only here. One input whose output is zarr is filtered in
    blocks: a ``dask.array`` over row blocks of the *output* (``map_blocks``),
    each a whole number of output chunk rows and about the rows one chunk
    row of the input gives (:func:`_block_bounds`). The task of the block of
    output rows ``i0 .. i1−1`` opens the source from its path and streams
    those rows band by band through the job's band function
    (:func:`convcli.pipeline.render.render_rows` through the job's runner:
    alpha, activation, overflow check; the input window of a band ``b0 ..
    b1−1`` is ``s·b0 − pad_top .. s·(b1−1) + d·(k−1) − pad_top``, border rows
    at the image edge only; transposed bands start on a multiple of the
    stride), so every block equals the same rows of the local result (bit
    for bit with the default chunks, whose rows are whole local bands), and
    writes them a chunk row at a time into a zarr v3 array with chunks
    ``(ROWS, COLS, N)`` (``--chunks``) created by the zarr sink in a
    temporary directory beside the target, renamed at the end; a block that
    runs on after an abort finds the temporary gone and writes nothing. Any
    other input (or a batch) is one task per file (``Client.map`` on a
    cluster, with ``retries=1``; Dask's ``threads``/``processes`` schedulers
    locally).

Messages: an unreachable scheduler is ``cannot reach Dask scheduler at …``
(:class:`OptionError`, after :data:`CONNECT_TIMEOUT` seconds at most); a
missing Dask names ``pip install 'convcli[dask]'``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from convcli.errors import ConvcliError, ImageError, OptionError, OutputError

__all__ = [
    "CONNECT_TIMEOUT",
    "DASK_EXTRA",
    "Outcome",
    "Task",
    "check_options",
    "connect",
    "cores",
    "execute",
    "parse_chunks",
    "render_chunked",
    "resolve_jobs",
]

CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a Dask scheduler before giving up."""

DASK_EXTRA = "pip install 'convcli[dask]'"

_STOP_GRACE = 10.0  # seconds a worker gets to unwind after SIGTERM before SIGKILL
_LOCAL_SCHEDULERS = ("threads", "processes", "synchronous")
_CHUNKABLE_MODES = ("zarr", "npy")  # sources read by region (TIFF modes are checked by class)


@dataclass(frozen=True)
class Task:
    """One input of a batch.

    Attributes
    ----------
    index : int
        Its position in the batch (records are reported in this order).
    source : str
        The input path (``-``: standard input, always read in this process).
    destination : convcli.job.Destination
    """

    index: int
    source: str
    destination: Any


@dataclass(frozen=True)
class Outcome:
    """What became of one :class:`Task`: a record (:func:`convcli.job.run`) or an error.

    Attributes
    ----------
    task : Task
    record : dict or None
        The JSON record of the input, None when it failed.
    error : ConvcliError or None
        Why it failed (reported like a local failure).
    peak_rss : int or None
        Peak resident memory of the process that filtered it, bytes (process
        pool only; the worker's peak so far, it may have run other files).
    """

    task: Task
    record: dict | None = None
    error: ConvcliError | None = None
    peak_rss: int | None = None


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def resolve_jobs(jobs: int) -> int:
    """Worker processes for ``--jobs``: ``jobs``, or one per core for 0.

    Raises
    ------
    OptionError
        ``jobs`` is negative.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 0:
        raise OptionError(f"`--jobs` must be 0 (one per core) or a positive integer, got {jobs!r}")
    return cores() if jobs == 0 else jobs


def parse_chunks(text: str | None) -> tuple[int, int | None] | None:
    """``ROWS`` or ``ROWS,COLS`` (output pixels) → ``(rows, cols or None)``; None → None.

    Raises
    ------
    OptionError
        Not one or two positive integers.
    """
    if text is None:
        return None
    parts = [part.strip() for part in str(text).split(",")]
    if len(parts) not in (1, 2) or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise OptionError(f"`--chunks` must be ROWS or ROWS,COLS (positive integers), got {text!r}")
    return int(parts[0]), (int(parts[1]) if len(parts) == 2 else None)


def check_options(jobs: int, scheduler: str | None, chunks: str | None) -> tuple[int, int | None] | None:
    """Validate ``--jobs``, ``--scheduler`` and ``--chunks`` before any input is read; the parsed chunks.

    Raises
    ------
    OptionError
        A negative ``jobs``, an unknown scheduler name, bad ``chunks``, or
        ``chunks`` without ``scheduler``.
    """
    resolve_jobs(jobs)
    if scheduler is not None:
        _scheduler_kind(scheduler)
    size = parse_chunks(chunks)
    if size is not None and scheduler is None:
        raise OptionError("`--chunks` sets the chunks of a Dask run; add --scheduler (threads, processes "
                          "or an address)")
    return size


def _scheduler_kind(scheduler: str) -> str:
    text = scheduler.strip()
    if text in _LOCAL_SCHEDULERS:
        return text
    if "://" in text or re.fullmatch(r"[A-Za-z0-9_.\-\[\]:]+:\d+", text):
        return "address"
    raise OptionError(f"`--scheduler` must be threads, processes or a scheduler address "
                      f"(tcp://HOST:PORT), got {scheduler!r}")


def _import_dask(distributed: bool = False) -> None:
    """Import Dask (and distributed, zarr) or raise one line naming the extra."""
    try:
        import dask.array  # noqa: F401
        import zarr  # noqa: F401
        if distributed:
            import distributed as _distributed  # noqa: F401
    except ImportError as exc:
        missing = exc.name or "dask"
        raise OptionError(f"--scheduler needs Dask ({missing} is not installed): {DASK_EXTRA}") from None


def _reachable(address: str, timeout: float) -> str | None:
    """Why a ``tcp://HOST:PORT`` address cannot be reached (refused, no route), or None.

    A plain socket connect, so that a refused port fails at once instead of
    after distributed's retries; other address forms are left to distributed.
    """
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme not in ("tcp", "") or not parts.hostname or not parts.port:
        return None
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__


def connect(address: str, timeout: float = CONNECT_TIMEOUT) -> Any:
    """A :class:`distributed.Client` of the scheduler at ``address``.

    The connection is checked with a plain socket first (a refused or
    unroutable address fails at once), then the client is made in a helper
    thread with a hard deadline of ``timeout`` + 2 seconds, so that a server
    that answers but is no Dask scheduler cannot hang the command.

    Raises
    ------
    OptionError
        Dask is missing, or no scheduler answers at ``address`` within ``timeout`` seconds.
    """
    import gc
    import io
    import threading

    _import_dask(distributed=True)
    from distributed import Client

    problem = _reachable(address, timeout)
    if problem is not None:
        raise OptionError(f"cannot reach Dask scheduler at {address} ({problem})")
    outcome: dict[str, Any] = {}

    def make() -> None:
        try:
            outcome["client"] = Client(address, timeout=timeout, set_as_default=False)
        except BaseException as exc:
            outcome["error"] = exc

    maker = threading.Thread(target=make, name="convcli-dask-connect", daemon=True)
    maker.start()
    maker.join(timeout + 2.0)
    if "client" in outcome:
        return outcome["client"]
    error = outcome.get("error")
    if error is None:
        reason = f"no Dask scheduler answered within {timeout + 2:.0f} s"
    else:
        if isinstance(error, (OSError, TimeoutError)) or type(error).__name__ == "CommClosedError":
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        else:  # it answered, but garbage for the Dask protocol (an HTTP server, …)
            reason = f"something answers there, but not as a Dask scheduler: {type(error).__name__}"
        _disarm_half_made_clients(error, Client)
    with contextlib.redirect_stderr(io.StringIO()):  # a half-made Client complains from __del__
        outcome.clear()
        error = None
        gc.collect()
    raise OptionError(f"cannot reach Dask scheduler at {address} ({reason})") from None


def _disarm_half_made_clients(error: BaseException, client_type: type) -> None:
    """A ``Client`` whose constructor raised (a server that is no Dask scheduler) would close itself
    from ``__del__``, waiting 10 s for that server and printing a traceback: make its ``__del__`` a
    no-op (``distributed`` skips it when the loop was never assigned), and drop the frames."""
    traceback = error.__traceback__
    while traceback is not None:
        candidate = traceback.tb_frame.f_locals.get("self")
        if isinstance(candidate, client_type):
            with contextlib.suppress(Exception):
                candidate._Client__loop = None
        traceback = traceback.tb_next
    error.__traceback__ = None


# ---------------------------------------------------------------------------
# the task every executor runs on one file


_IN_TASK = False


class _Terminated(BaseException):
    """SIGTERM in a pool worker: unwind the running job (its sinks abort), then exit."""


def _on_sigterm(signum: int, frame: Any) -> None:
    """Unwind once: a second SIGTERM (the pool's manager terminates the rest when one worker exits)
    must not interrupt the sinks' abort."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if _IN_TASK:
        raise _Terminated
    os._exit(128 + signum)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
_HEAP_BLOCKS_UP_TO = 1 << 30  # bytes: blocks up to this size come from the heap in a pool worker
_USER_MALLOC_SETTINGS = ("GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_",
                         "MALLOC_TOP_PAD_")


def _keep_freed_memory() -> bool:
    """Make glibc keep freed memory in this process for reuse; True when it was set.

    By default glibc serves every block above its mmap threshold (at most
    32 MiB) with a fresh ``mmap`` and unmaps it on ``free``, so each file a
    worker filters pays page faults on all of its band buffers again
    (measured: ~38 000 minor faults, 0.15–0.3 s of system time and 0.1–0.2 s
    of user time per 12 MP JPEG → Sobel → PNG; more wall time where the
    hypervisor backs pages lazily). Blocks up to :data:`_HEAP_BLOCKS_UP_TO`
    from the heap, never trimmed: the next file reuses the same pages, the
    peak RSS is that of the largest file (as before). A pool worker is a
    process of its own, so this touches nobody else. Not glibc (no
    ``mallopt``), or any ``MALLOC_*`` / ``GLIBC_TUNABLES`` setting of the
    user's: left alone.
    """
    if sys.platform != "linux" or any(name in os.environ for name in _USER_MALLOC_SETTINGS):
        return False
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
        mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    except (OSError, AttributeError):  # no libc symbols (static, musl without mallopt, …)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _HEAP_BLOCKS_UP_TO) and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))


def _init_worker(threads: int) -> None:
    """Pool worker set-up: engine and BLAS threads, freed memory kept for the next file, SIGINT
    ignored, SIGTERM unwinds."""
    os.environ.setdefault("CONVCLI_THREADS", str(threads))  # a user's own setting wins
    if "numpy" not in sys.modules:  # BLAS reads these when numpy loads it
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, str(threads))
    _keep_freed_memory()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    atexit.register(_exit_at_once)  # registered last, so it runs first


def _exit_at_once() -> None:
    """A pool worker's exit once the pool has sent it home: flush, then leave without the interpreter's
    teardown (~0.3 s of freeing modules with numpy, scipy, Pillow loaded, during which the batch waits).

    Every output is complete by then (each file's sink committed before its
    result was sent) and the pool does not read a worker's exit status.
    """
    import contextlib

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            stream.flush()
    os._exit(0)


def _peak_rss() -> int | None:
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _run_task(job: Any, source: str, destination: Any, existing: frozenset[str] | None = None,
              skip_existing: bool = False) -> tuple[dict, int | None]:
    """``run(job, source, destination)`` in a worker: (record, peak RSS); errors as ConvcliError.

    ``existing`` (a retry after a worker died): the files of the output
    directory before the batch began; those may not be overwritten (as in the
    first attempt), outputs the first attempt already wrote may.
    ``skip_existing``: an input whose outputs all exist is not run; its
    record is ``{"skipped": reason}``.
    """
    global _IN_TASK
    from convcli.job import describe_error, run

    _IN_TASK = True
    try:
        if skip_existing and _outputs_exist(job, source, destination):
            record = {"skipped": f"{source}: skipped, its outputs exist (--skip-existing)"}
        elif existing is not None and not destination.force:
            record = _run_again(job, source, destination, existing)
        else:
            record = run(job, source, destination)
    except _Terminated:
        os._exit(128 + signal.SIGTERM)
    except MemoryError as exc:
        raise describe_error(exc, source) from None
    finally:
        _IN_TASK = False
    return record, _peak_rss()


def _failed(task: Task, exc: BaseException) -> Outcome:
    from convcli.job import describe_error

    return Outcome(task, error=describe_error(exc, task.source))


def _outputs_exist(job: Any, source: str, destination: Any) -> bool:
    from convcli.job import planned_outputs
    from convcli.pipeline.sources import open_source

    with open_source(source, max_pixels=job.max_pixels,
                     streamed_max_pixels=job.streamed_max_pixels) as opened:
        files = [path for path in planned_outputs(job, opened, destination) if path != "-"]
    return bool(files) and all(os.path.exists(path) for path in files)


def _run_batch_task(job: Any, source: str, destination: Any, *, listing: dict[str, frozenset[str]],
                    skip_existing: bool = False) -> tuple[dict, int | None]:
    """:func:`_run_task` for one file of a Dask batch: any attempt (Dask retries a task whose worker
    died) refuses only outputs that existed before the batch (``listing``, by output folder)."""
    existing = listing.get(_output_folder(destination), frozenset())
    return _run_task(job, source, destination, existing, skip_existing)


def _run_again(job: Any, source: str, destination: Any, existing: frozenset[str]) -> dict:
    import dataclasses

    from convcli.errors import OutputError
    from convcli.job import planned_outputs, run
    from convcli.pipeline.sources import open_source

    with open_source(source, max_pixels=job.max_pixels,
                     streamed_max_pixels=job.streamed_max_pixels) as opened:
        for target in planned_outputs(job, opened, destination):
            if target != "-" and os.path.abspath(target) in existing:
                raise OutputError(f"{target} exists; use --force to overwrite")
        return run(job, opened, dataclasses.replace(destination, force=True))


def _output_folder(destination: Any) -> str:
    output = destination.output
    if output is None or output.endswith(("/", os.sep)) or os.path.isdir(output):
        return os.path.abspath(output or os.curdir)
    return os.path.dirname(os.path.abspath(output))


def _listing(destinations: Sequence[Any]) -> dict[str, frozenset[str]]:
    """The files in every output directory of ``destinations`` now (absolute paths), by directory."""
    listing = {}
    for folder in {_output_folder(d) for d in destinations if d.output != "-"}:
        try:
            listing[folder] = frozenset(os.path.join(folder, name) for name in os.listdir(folder))
        except OSError:
            listing[folder] = frozenset()
    return listing


def _sequential(job: Any, tasks: Sequence[Task], prepare: Callable[[Task], None] | None = None,
                skip_existing: bool = False) -> Iterator[Outcome]:
    for task in tasks:
        try:
            if prepare is not None:
                prepare(task)
            record = _run_task(job, task.source, task.destination, skip_existing=skip_existing)[0]
        except (ConvcliError, MemoryError) as exc:
            yield _failed(task, exc)
            continue
        yield Outcome(task, record=record)


def _prepared(tasks: Sequence[Task], prepare: Callable[[Task], None] | None,
              failed: list[Outcome]) -> list[Task]:
    """The tasks ``prepare`` accepts (called in input order, here); the others go to ``failed``."""
    if prepare is None:
        return list(tasks)
    accepted = []
    for task in tasks:
        try:
            prepare(task)
        except (ConvcliError, MemoryError) as exc:
            failed.append(_failed(task, exc))
            continue
        accepted.append(task)
    return accepted


# ---------------------------------------------------------------------------
# --jobs: a process pool


def _stop_pool(executor: Any, *, abort: bool) -> None:
    """Shut the pool down; with ``abort``, SIGTERM its workers and wait for them (SIGKILL after a grace)."""
    if not abort:
        executor.shutdown(wait=True)
        return
    processes = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + _STOP_GRACE
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


def _pool(job: Any, tasks: Sequence[Task], workers: int, skip_existing: bool) -> Iterator[Outcome]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    threads = max(1, cores() // workers)
    context = multiprocessing.get_context("spawn")
    pending = list(tasks)
    # a retried file may replace what its first attempt wrote, nothing else
    before = _listing([task.destination for task in tasks])
    for attempt in (1, 2):
        broken: list[Task] = []
        executor = ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=context,
                                       initializer=_init_worker, initargs=(threads,))
        finished = False
        try:
            futures = {}
            for task in pending:
                existing = None if attempt == 1 else before.get(_output_folder(task.destination))
                futures[executor.submit(_run_task, job, task.source, task.destination, existing,
                                        skip_existing)] = task
            for future in as_completed(futures):
                task = futures[future]
                try:
                    record, peak = future.result()
                except BrokenProcessPool:
                    if attempt == 1:
                        broken.append(task)
                    else:
                        yield Outcome(task, error=ImageError(
                            f"{task.source}: the worker process filtering it died (out of memory?)"))
                    continue
                except ConvcliError as exc:
                    yield Outcome(task, error=exc)
                    continue
                yield Outcome(task, record=record, peak_rss=peak)
            finished = True
        finally:
            _stop_pool(executor, abort=not finished or bool(broken))
        if not broken:
            return
        pending = sorted(broken, key=lambda task: task.index)


# ---------------------------------------------------------------------------
# Dask


def _absolute(task: Task) -> tuple[str, Any]:
    """The task's source and destination with absolute paths (a cluster worker has its own directory)."""
    import dataclasses

    destination = task.destination
    output = destination.output
    if output != "-":
        folder = output is None or output.endswith(("/", os.sep)) or os.path.isdir(output)
        output = os.path.abspath(output or os.curdir) + (os.sep if folder else "")
    montage = os.path.abspath(destination.montage) if destination.montage else None
    protect = tuple(os.path.abspath(path) for path in destination.protect)
    return os.path.abspath(task.source), dataclasses.replace(destination, output=output, montage=montage,
                                                             protect=protect)


def _as_given(record: dict, task: Task) -> dict:
    """A record made from absolute paths, with the paths as a local run gives them."""
    if "skipped" in record:
        return {"skipped": record["skipped"].replace(os.path.abspath(task.source), task.source, 1)}
    outputs = [dict(output, path=output["path"] if output["path"] == "-" or os.path.isabs(
        task.destination.output or "") else os.path.relpath(output["path"])) for output in record["outputs"]]
    return dict(record, input=task.source, outputs=outputs)


def _error_as_given(exc: ConvcliError, task: Task) -> ConvcliError:
    """The error with the absolute input path written as given."""
    text = str(exc).replace(os.path.abspath(task.source), task.source)
    if not os.path.isabs(task.destination.output or ""):
        text = text.replace(os.path.join(os.getcwd(), ""), "")
    return exc if text == str(exc) else type(exc)(text)


def _dask_batch(job: Any, tasks: Sequence[Task], scheduler: str, client: Any,
                skip_existing: bool) -> Iterator[Outcome]:
    """One Dask task per file: futures on a cluster, a local Dask scheduler otherwise."""
    if client is not None:
        from distributed import as_completed

        sources, destinations = zip(*[_absolute(task) for task in tasks])
        # Dask retries a task whose worker died, maybe after its output was renamed into place:
        # every task may overwrite its own outputs except files that were there before the batch
        [listing] = client.scatter([_listing(destinations)])
        futures = client.map(_run_batch_task, [job] * len(tasks), sources, destinations, pure=False,
                             retries=1, listing=listing, skip_existing=skip_existing)
        by_key = {future.key: task for future, task in zip(futures, tasks)}
        try:
            for future in as_completed(futures, loop=client.loop):
                task = by_key[future.key]
                try:
                    record, _ = future.result()
                except ConvcliError as exc:
                    yield Outcome(task, error=_error_as_given(exc, task))
                    continue
                except Exception as exc:  # KilledWorker, a worker lost twice, …
                    if type(exc).__name__ not in ("KilledWorker", "CommClosedError", "FutureCancelledError"):
                        raise
                    yield Outcome(task, error=ImageError(
                        f"{task.source}: the Dask worker filtering it died ({type(exc).__name__})"))
                    continue
                yield Outcome(task, record=_as_given(record, task))
        finally:
            client.cancel([future for future in futures if not future.done()])
        return
    import dask

    def guarded(task: Task) -> tuple[dict | None, ConvcliError | None]:
        try:
            return _run_task(job, task.source, task.destination, skip_existing=skip_existing)[0], None
        except ConvcliError as exc:
            return None, exc

    results = dask.compute(*[dask.delayed(guarded, pure=False)(task) for task in tasks], scheduler=scheduler)
    for task, (record, error) in zip(tasks, results):
        yield Outcome(task, record=record, error=error)


def _is_region_source(source: Any) -> bool:
    return source.mode in _CHUNKABLE_MODES or type(source).__name__ == "TiffSource"


def _block_bounds(out_rows: int, chunk_rows: int, target_rows: int, min_blocks: int = 4) -> list[int]:
    """Row boundaries ``0 = b0 < b1 < … < bn = out_rows`` of the Dask blocks.

    Every block is a whole number of output chunk rows (each chunk is written
    by one task), about ``target_rows`` rows (the output rows one chunk row
    of the input covers), and there are at least ``min_blocks`` blocks when
    the image has that many chunk rows (work for every worker).
    """
    chunk_rows = max(1, chunk_rows)
    n_chunk_rows = -(-out_rows // chunk_rows)
    per_block = max(1, round(target_rows / chunk_rows))
    per_block = min(per_block, max(1, -(-n_chunk_rows // min_blocks)))
    step = per_block * chunk_rows
    return [*range(0, out_rows, step), out_rows]


def _engine_threads_as_dask_worker() -> None:
    """On a ``dask.distributed`` worker, size the engine's thread pool to the worker's ``nthreads``.

    Dask gives each worker a thread budget (``--nthreads``); the engines
    would otherwise start one thread per core in every worker process (two
    workers × two threads on two cores). ``CONVCLI_THREADS``, when set, wins;
    the pool is created at the first band, so the first block decides.
    """
    if os.environ.get("CONVCLI_THREADS"):
        return
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):  # not on a distributed worker
        return
    threads = getattr(worker, "nthreads", None)
    if isinstance(threads, int) and threads > 0:
        os.environ["CONVCLI_THREADS"] = str(threads)


def _stream_block(job: Any, path: str, destination: Any, array: Any, bounds: Sequence[int], band_rows: int,
                  align: int, float_unit: bool, block_info: dict | None = None) -> Any:
    """Output rows ``bounds[i] .. bounds[i+1] − 1`` (block ``i``) streamed into ``array``.

    The source is opened here from its path; the rows are rendered band by
    band (``band_rows``: the local run's bands when the block starts on one)
    by the job's own band function (:meth:`convcli.job._Runner.render`:
    alpha, activation, overflow check) and written a whole chunk row at a
    time, so the worker holds one band and one chunk row, never the block.
    Refuses to write once the output's temporary directory is gone (the run
    was aborted), so a block still running then cannot recreate part of it.

    Returns
    -------
    numpy.ndarray
        ``(1, 2, N)``: the block's per-map minimum and maximum.
    """
    import numpy as np

    from convcli.errors import OutputError
    from convcli.job import _Runner
    from convcli.pipeline.bands import Rows, split_rows
    from convcli.pipeline.sources import open_source

    _engine_threads_as_dask_worker()
    index = block_info[None]["chunk-location"][0]
    start, stop = bounds[index], bounds[index + 1]
    chunk_rows = int(array.chunks[0])
    root = getattr(array.store, "root", None)
    buffer = np.empty((min(chunk_rows, stop - start), *array.shape[1:]), array.dtype)
    lows = np.full(array.shape[2], np.inf, array.dtype)
    highs = np.full(array.shape[2], -np.inf, array.dtype)
    filled, top = 0, start
    with open_source(path, max_pixels=job.max_pixels, streamed_max_pixels=job.streamed_max_pixels) as source:
        runner = _Runner(job, source, destination, float_unit=float_unit)
        for band in split_rows(stop - start, band_rows, align):
            maps = runner.render(Rows(start + band.start, start + band.stop))
            np.minimum(lows, maps.min(axis=(0, 1)), out=lows)
            np.maximum(highs, maps.max(axis=(0, 1)), out=highs)
            done = 0
            while done < len(maps):
                take = min(len(buffer) - filled, len(maps) - done)
                buffer[filled:filled + take] = maps[done:done + take]
                filled, done = filled + take, done + take
                if filled == len(buffer) or top + filled == stop:
                    if root is not None and not os.path.exists(os.path.join(os.fspath(root), "zarr.json")):
                        raise OutputError(f"{root}: the output was aborted")
                    array[top:top + filled] = buffer[:filled]
                    top, filled = top + filled, 0
    return np.stack([lows, highs])[None]


def _stop_blocks(array: Any, quiet: float = 0.3, limit: float = 10.0) -> None:
    """After a failed block: make the blocks still running stop writing, before the output is removed.

    Removes the output's ``zarr.json`` (every block checks it before it
    writes a chunk row, :func:`_stream_block`), then waits until nothing in
    the output directory has changed for ``quiet`` seconds (at most
    ``limit``): a chunk row whose write was already under way lands first,
    so removing the temporary directory afterwards is not raced by a write
    that would recreate part of it.
    """
    root = getattr(array.store, "root", None)
    if root is None:
        return
    root = os.fspath(root)
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(root, "zarr.json"))
    deadline, last = time.monotonic() + limit, None
    while time.monotonic() < deadline:
        state = []
        for folder, _dirs, files in os.walk(root):
            for name in files:
                try:
                    state.append(os.stat(os.path.join(folder, name)).st_mtime_ns)
                except OSError:
                    continue
        snapshot = (len(state), max(state, default=0))
        if snapshot == last:
            return
        last = snapshot
        time.sleep(quiet)


def render_chunked(job: Any, task: Task, *, scheduler: str = "threads", client: Any = None,
                   chunks: tuple[int, int | None] | None = None) -> dict[str, Any]:
    """Filter one region-readable input (zarr, TIFF, npy) into a zarr output, block by block on Dask.

    The output's row blocks (:func:`_block_bounds`: whole chunk rows, about
    as many rows as one chunk row of the input gives) are the blocks of a
    ``dask.array`` (``map_blocks``), each streamed by one task
    (:func:`_stream_block`) into the zarr array the sink created.

    Parameters
    ----------
    job : convcli.job.Job
    task : Task
        Its destination must resolve to the zarr format.
    scheduler : {'threads', 'processes', 'synchronous'}
        Dask's local scheduler (ignored when ``client`` is given).
    client : distributed.Client, optional
    chunks : (rows, cols or None), optional
        Output chunk size in output pixels. Rows default to whole local
        streaming bands (the job's band budget), about 256 rows, so every
        block renders exactly the local run's bands (bit for bit for every
        strategy); other rows are exact where the strategy does not depend on
        the band (direct, separable). Transposed rows are rounded down to a
        multiple of the stride. Columns default to 256.

    Returns
    -------
    dict
        The same record :func:`convcli.job.run` returns for this input.

    Raises
    ------
    ConvcliError
        As :func:`convcli.job.run`; a failed block names the input. Nothing
        is left at the target (the temporary directory is removed).
    """
    import dask
    import dask.array as da
    import numpy as np

    from convcli.job import _geometry_record, _Runner
    from convcli.pipeline.sinks import DEFAULT_CHUNK, open_sink
    from convcli.pipeline.sources import open_source

    with open_source(task.source, max_pixels=job.max_pixels,
                     streamed_max_pixels=job.streamed_max_pixels) as source:
        runner = _Runner(job, source, task.destination)
        mode, in_shape = source.mode, source.shape
        alpha = job.alpha if runner.colour_source is not source else "none"
        in_chunk_rows = getattr(source, "chunk_rows", None)
    if runner.fmt != "zarr":
        raise OptionError(f"{task.source}: chunked Dask output is zarr, not {runner.fmt}")
    plan, target = runner.plan, runner.targets[0]
    out_rows, out_cols, n_out = runner.out_shape
    dtype = np.float64 if runner.dtype == np.float64 else np.float32
    stride_rows = plan.conv_options["stride"][0]
    align = stride_rows if job.transpose else 1
    band_rows = len(runner.bands[0])  # a multiple of align
    if chunks:
        rows = max(align, chunks[0] // align * align)
    else:
        rows = band_rows * max(1, round(DEFAULT_CHUNK / band_rows))
    rows = min(rows, out_rows)
    cols = chunks[1] if chunks and len(chunks) > 1 and chunks[1] else DEFAULT_CHUNK
    if in_chunk_rows:
        per_chunk_row = in_chunk_rows * stride_rows if job.transpose else in_chunk_rows / stride_rows
    else:
        per_chunk_row = 8 * rows
    bounds = _block_bounds(out_rows, rows, int(per_chunk_row))
    record: dict[str, Any] = {
        "input": runner.name if runner.name != "stdin" else task.source, "mode": mode,
        "shape_in": [in_shape[0], in_shape[1], plan.channels_used],
        "shape_out": list(runner.out_shape), "outputs": [],
        "geometry": _geometry_record(job, plan), "alpha": alpha,  # the same record as convcli.job.run
    }
    destination = task.destination
    with open_sink(target, "zarr", runner.out_shape, dtype, force=destination.force,
                   protect=destination.protect, chunks=(rows, min(cols, out_cols))) as sink:
        array = sink._array  # the sink's zarr array in its temporary directory
        ranges = da.map_blocks(
            _stream_block, job, os.path.abspath(task.source), destination, array, bounds, band_rows, align,
            runner.float_unit, chunks=((1,) * (len(bounds) - 1), (2,), (n_out,)), dtype=dtype,
            meta=np.empty((0, 0, 0), dtype), name=f"convcli-{os.path.basename(target)}")
        try:
            try:
                if client is not None:
                    future = client.compute(ranges)
                    try:
                        ranges = future.result()
                    except BaseException:
                        client.cancel([future])
                        raise
                else:
                    ranges = dask.compute(ranges, scheduler=scheduler)[0]
            except BaseException:
                _stop_blocks(array)  # blocks still running elsewhere must not recreate the output
                raise
        except ConvcliError as exc:  # a block's input (a corrupt chunk, …): the message as a local run's
            raise _error_as_given(exc, task) from None
        except OSError as exc:  # a block's write (disk full, permissions): one line, nothing left
            reason = (exc.strerror or str(exc)).lower()
            raise OutputError(f"{target}: {reason}; nothing was written") from None
        sink.rows_written = out_rows  # every block has been stored
        sink.commit()
    record["outputs"].append({"path": target, "format": "zarr", "shape": list(runner.out_shape)})
    if job.map_stats:
        from convcli.job import _json_number

        lows, highs = ranges[:, 0].min(axis=0), ranges[:, 1].max(axis=0)
        record["maps"] = [{"name": name, "min": _json_number(float(lo)), "max": _json_number(float(hi))}
                          for name, lo, hi in zip(runner.names, lows, highs)]
    return record


def _wants_chunks(job: Any, task: Task) -> bool:
    """A single region-readable input whose output is zarr (and nothing that holds the maps)."""
    from convcli.job import output_format
    from convcli.pipeline.sources import open_source

    if task.source == "-" or job.verify or task.destination.montage:
        return False
    try:
        with open_source(task.source, max_pixels=job.max_pixels,
                     streamed_max_pixels=job.streamed_max_pixels) as source:
            return _is_region_source(source) and output_format(job, task.destination, source.mode) == "zarr"
    except ConvcliError:
        return False  # the run reports it


def _dask(job: Any, tasks: Sequence[Task], kind: str, client: Any,
          chunks: tuple[int, int | None] | None, skip_existing: bool) -> Iterator[Outcome]:
    """A single region-readable input with a zarr output in chunks; anything else one task per file."""
    if len(tasks) == 1 and not skip_existing and _wants_chunks(job, tasks[0]):
        task = tasks[0]
        try:
            record = render_chunked(job, task, scheduler=kind, client=client, chunks=chunks)
        except (ConvcliError, MemoryError) as exc:
            yield _failed(task, exc)
            return
        yield Outcome(task, record=record)
    elif tasks:
        yield from _dask_batch(job, tasks, kind, client, skip_existing)


# ---------------------------------------------------------------------------
# the one entry point


def execute(job: Any, tasks: Sequence[Task], *, jobs: int = 1, scheduler: str | None = None,
            chunks: tuple[int, int | None] | None = None,
            prepare: Callable[[Task], None] | None = None, skip_existing: bool = False
            ) -> Iterator[Outcome]:
    """Run ``job`` on every task; yield one :class:`Outcome` per task as each finishes.

    Parameters
    ----------
    job : convcli.job.Job
    tasks : sequence of Task
    jobs : int
        Worker processes (``--jobs``): 1 runs here, 0 one per core. Ignored
        with ``scheduler``.
    scheduler : str, optional
        ``threads``, ``processes`` (Dask's local schedulers) or the address
        of a ``dask.distributed`` scheduler (``tcp://HOST:PORT``).
    chunks : (rows, cols or None), optional
        Output chunk size of a chunked zarr output (:func:`parse_chunks`).
    prepare : callable, optional
        Called in this process with each task, in input order, before it is
        run or sent to a worker (e.g. to refuse two inputs that would write
        one file); a :class:`ConvcliError` it raises fails that task alone.
    skip_existing : bool
        Do not run an input whose outputs all exist; its record is
        ``{"skipped": reason}`` (``--skip-existing``).

    Yields
    ------
    Outcome
        In completion order (``Outcome.task.index`` gives the input order).
        Errors a user can cause come as ``Outcome.error``; anything else
        (a bug) is raised.

    Raises
    ------
    OptionError
        Bad ``jobs`` or ``scheduler``, Dask missing, scheduler unreachable.
    KeyboardInterrupt
        Passed on after the workers are stopped (no partial output is left:
        sinks are atomic and aborted in the workers).
    """
    tasks = list(tasks)
    workers = resolve_jobs(jobs)
    if scheduler is None and (workers == 1 or sum(task.source != "-" for task in tasks) <= 1):
        yield from _sequential(job, tasks, prepare, skip_existing)
        return
    kind, client = None, None
    if scheduler is not None:  # a bad name, a missing Dask, no scheduler: fail before any input is read
        kind = _scheduler_kind(scheduler)
        if kind == "address":
            client = connect(scheduler.strip())
        else:
            _import_dask()
    try:
        failed: list[Outcome] = []
        tasks = _prepared(tasks, prepare, failed)
        yield from failed
        yield from _sequential(job, [task for task in tasks if task.source == "-"], None, skip_existing)
        remote = [task for task in tasks if task.source != "-"]
        if kind is not None:
            yield from _dask(job, remote, kind, client, chunks, skip_existing)
        elif remote:
            yield from _pool(job, remote, workers, skip_existing)
    finally:
        if client is not None:
            client.close()
