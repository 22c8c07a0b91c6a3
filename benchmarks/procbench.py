"""Whole-process timing for the streaming and batch benchmarks (``streaming.py``, ``batch.py``).

Shared pieces: a command run as a child process with its wall time, CPU
time and peak RSS (``os.wait4``), a watchdog that stops a command whose
resident memory passes a limit (the machine is shared: a non-streaming
build on a gigapixel image must not wake the OOM killer), interleaved
rounds with medians, the generators of the test images (written band by
band, so the generator itself stays small), and the markdown table helpers.

Measures of one run (:class:`Sample`):

* ``wall``: seconds from ``Popen`` to ``wait4`` returning;
* ``cpu``: user + system seconds of the command and every descendant it
  waited for (its rusage, reported by GNU time, ``/usr/bin/time``, which
  launches it: see :data:`GNU_TIME`), so ``cpu / wall`` is the CPU use of
  the whole run (200 % = both cores busy on this machine);
* ``peak_mb``: ``ru_maxrss`` of the same rusage: the largest peak resident
  set of any single process of the tree (Linux keeps the maximum, not the
  sum: for a process pool this is the peak RSS per worker), in MB (10⁶ B);
* ``tree_peak_mb``: the largest sum of the tree's resident sets seen by
  the watchdog, sampled every 50 ms (a short peak can be missed): the
  memory of a pipeline ``a | b`` or of a whole process pool.

Processes outside the child's tree (Dask workers started beforehand) are
measured separately: their ``VmHWM`` is reset before a run (``clear_refs``)
and read after it (:func:`reset_peak`, :func:`read_peak_mb`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import json
import math
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_PHOTO = ROOT / "sample_images" / "astronaut.png"
NOT_APPLICABLE = "–"
MB = 1e6

_START = time.perf_counter()


def progress(message: str) -> None:
    """A progress line on stderr, with the seconds since start (stdout holds only the report)."""
    print(f"[{time.perf_counter() - _START:7.1f} s] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Sample:
    """One measured run of a command: wall s, CPU s (user + sys of the tree), peak RSS MB."""

    wall: float
    cpu: float
    peak_mb: float
    extra_peak_mb: float = 0.0  # largest VmHWM among watched outside processes (Dask workers)
    tree_peak_mb: float = 0.0  # largest sampled sum of VmRSS over the tree (every 50 ms; pipes)

    @property
    def total_peak_mb(self) -> float:
        """Peak memory of the command: its largest process, or the sampled sum of a pipeline/pool."""
        return max(self.peak_mb, self.tree_peak_mb)

    @property
    def cpu_percent(self) -> float:
        """``100 · cpu / wall``."""
        return 100.0 * self.cpu / self.wall if self.wall > 0 else 0.0


class CommandFailed(RuntimeError):
    """A measured command exited non-zero, was killed by the watchdog, or could not start."""


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (every thread's ``children`` file), [] when it is gone."""
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as handle:
                found += [int(p) for p in handle.read().split()]
    except OSError:
        pass
    return found


def tree_pids(pid: int) -> list[int]:
    """``pid`` and all its descendants (a snapshot)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo += _children(current)
    return pids


def _status_kb(pid: int, field: str) -> int:
    """A ``kB`` field of ``/proc/PID/status`` (0 when the process or the field is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def rss_mb(pids: Sequence[int]) -> float:
    """Current total resident set of ``pids`` in MB."""
    return sum(_status_kb(p, "VmRSS") for p in pids) * 1024 / MB


def reset_peak(pids: Sequence[int]) -> None:
    """Reset the ``VmHWM`` (peak RSS) of our own processes ``pids`` to their current RSS."""
    for pid in pids:
        try:
            with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as handle:
                handle.write("5")
        except OSError:
            pass


def read_peak_mb(pids: Sequence[int]) -> float:
    """The largest ``VmHWM`` (peak RSS since start or :func:`reset_peak`) among ``pids``, MB."""
    return max((_status_kb(p, "VmHWM") * 1024 / MB for p in pids), default=0.0)


#: GNU time, used to launch every measured command when installed. A child's ``ru_maxrss``
#: starts at the RSS of the process it was forked from (Linux records the pre-``exec`` memory's
#: high-water mark), so measured directly from this Python (≈ 40–100 MB) every small command
#: would look as big as the benchmark itself; GNU time is a ~2 MB C program and reports the
#: rusage of its own child only.
GNU_TIME = "/usr/bin/time" if Path("/usr/bin/time").exists() else None


def run_measured(argv: Sequence[str], *, rss_limit_mb: float = 0.0, cwd: Path | None = None,
                 env: Mapping[str, str] | None = None, timeout: float | None = None,
                 watch: Sequence[int] = ()) -> Sample:
    """Run ``argv`` to completion and measure it.

    The child runs in its own session (process group); a watchdog thread
    polls the resident memory of its tree plus ``watch`` every 50 ms and,
    past ``rss_limit_mb`` (0: no limit) or ``timeout`` seconds, kills the
    child's process group (and only it).

    Raises
    ------
    CommandFailed
        Non-zero exit, killed by the watchdog, or not startable; the message
        holds the reason and the tail of the command's stderr.
    """
    for pid in watch:
        reset_peak([pid])
    with tempfile.TemporaryFile() as errors, tempfile.NamedTemporaryFile("r", suffix=".time") as timing:
        command = list(argv)
        if GNU_TIME is not None:
            command = [GNU_TIME, "-f", "%U %S %M", "-o", timing.name, *command]
        start = time.perf_counter()
        try:
            child = subprocess.Popen(command, cwd=cwd, env=None if env is None else dict(env),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors,
                                     start_new_session=True)
        except OSError as exc:
            raise CommandFailed(f"cannot start {argv[0]}: {exc}") from exc
        done = threading.Event()
        verdict: list[str] = []
        tree_peak = [0.0]

        def watchdog() -> None:
            while not done.wait(0.05):
                tree = rss_mb(tree_pids(child.pid))
                tree_peak[0] = max(tree_peak[0], tree)
                used = tree + rss_mb(watch)
                late = timeout is not None and time.perf_counter() - start > timeout
                if (rss_limit_mb and used > rss_limit_mb) or late:
                    verdict.append(f"timeout after {timeout:g} s" if late else
                                   f"killed: resident memory {used:.0f} MB passed the limit "
                                   f"{rss_limit_mb:.0f} MB (--rss-limit)")
                    with contextlib.suppress(OSError):
                        os.killpg(child.pid, signal.SIGKILL)
                    return

        guard = threading.Thread(target=watchdog, daemon=True)
        guard.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        except BaseException:  # Ctrl-C: stop the child's group, nothing else
            with contextlib.suppress(OSError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            raise
        finally:
            done.set()
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen quiet
        guard.join()
        if verdict or child.returncode != 0:
            errors.seek(0)
            tail = errors.read().decode(errors="replace").strip().splitlines()[-3:]
            reason = verdict[0] if verdict else f"exit status {child.returncode}"
            raise CommandFailed(f"{reason}: {' | '.join(tail)[:400]}")
        cpu, peak_kb = usage.ru_utime + usage.ru_stime, usage.ru_maxrss
        if GNU_TIME is not None:  # the command's own figures, without this process's baggage
            user, system, peak = timing.read().split()[-3:]
            cpu, peak_kb = float(user) + float(system), int(peak)
    return Sample(wall=wall, cpu=cpu, peak_mb=peak_kb * 1024 / MB, extra_peak_mb=read_peak_mb(watch),
                  tree_peak_mb=tree_peak[0])


@dataclass
class Contender:
    """One timed command: ``prepare`` (untimed: remove old outputs) then ``argv`` measured."""

    key: str
    argv: list[str]
    prepare: Callable[[], None] = lambda: None
    cwd: Path | None = None
    watch: Sequence[int] = ()
    extra_cpu: Callable[[], float] | None = None  # CPU seconds so far of outside processes it uses


@dataclass
class Outcome:
    """Samples of one contender over the rounds, or why it stopped."""

    samples: list[Sample]
    failure: str | None = None

    def median(self, measure: str) -> float | None:
        """Median of a :class:`Sample` attribute over the rounds (None without samples)."""
        if not self.samples:
            return None
        return statistics.median(getattr(s, measure) for s in self.samples)


def interleaved(contenders: Sequence[Contender], rounds: int, *, rss_limit_mb: float = 0.0,
                timeout: float | None = None, seed: int = 0) -> dict[str, Outcome]:
    """Measure every contender once per round, in a new seeded random order each round.

    A contender that fails is reported once and left out of the later rounds
    (its earlier samples are kept, but :func:`Outcome.median` of a failed
    contender should not be trusted: the report shows the failure).
    """
    outcomes = {c.key: Outcome([]) for c in contenders}
    shuffler = random.Random(seed)
    for number in range(1, rounds + 1):
        order = [c for c in contenders if outcomes[c.key].failure is None]
        shuffler.shuffle(order)
        for contender in order:
            contender.prepare()
            before = contender.extra_cpu() if contender.extra_cpu else 0.0
            try:
                sample = run_measured(contender.argv, rss_limit_mb=rss_limit_mb, cwd=contender.cwd,
                                      timeout=timeout, watch=contender.watch)
            except CommandFailed as exc:
                outcomes[contender.key].failure = str(exc)
                progress(f"!!! {contender.key} failed (round {number}): {exc}")
                continue
            if contender.extra_cpu:
                sample = replace(sample, cpu=sample.cpu + contender.extra_cpu() - before)
            outcomes[contender.key].samples.append(sample)
            progress(f"round {number}/{rounds} {contender.key}: {sample.wall:.2f} s, "
                     f"{sample.cpu_percent:.0f} % CPU, {sample.peak_mb:.0f} MB a process, "
                     f"{sample.tree_peak_mb:.0f} MB tree")
    return outcomes


def convcli_command(override: str | None = None) -> list[str]:
    """The convcli command: ``override`` split on spaces, else ``python -m convcli`` of this interpreter.

    ``python -m`` honours ``PYTHONPATH``, so ``PYTHONPATH=$PWD`` in a worktree
    measures that worktree's convcli.
    """
    if override:
        return override.split()
    return [sys.executable, "-m", "convcli"]


def convcli_location(command: Sequence[str]) -> str:
    """Where the measured convcli is imported from (for the report)."""
    if Path(command[0]).name.startswith("python") and command[1:3] == ["-m", "convcli"]:
        result = subprocess.run([command[0], "-c", "import convcli; print(convcli.__file__)"],
                                capture_output=True, text=True, check=False)
        return result.stdout.strip() or result.stderr.strip()[-200:]
    return " ".join(command)


def apply_help(command: Sequence[str]) -> str:
    """The text of ``convcli apply --help`` (wide, so no option name is wrapped)."""
    env = {**os.environ, "COLUMNS": "250", "TERM": "dumb", "NO_COLOR": "1"}
    result = subprocess.run([*command, "apply", "--help"], capture_output=True, text=True, env=env,
                            check=False)
    return result.stdout + result.stderr


def has_option(help_text: str, option: str) -> bool:
    """Whether ``--option`` appears as an option in a help text."""
    return any(token.strip("│,[]()") == option for token in help_text.split())


def command_version(argv: Sequence[str]) -> str:
    """First line of a tool's version output, or ``not installed``."""
    if shutil.which(argv[0]) is None:
        return f"{argv[0]} not installed"
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    return ((result.stdout or result.stderr).strip().splitlines() or ["?"])[0]


def machine_lines() -> list[str]:
    """Report lines: machine, load, memory."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    mem = _status_kb_meminfo("MemTotal") / 1024**2
    return [f"- Machine: nproc {cores}, {platform.machine()}, {platform.system()} {platform.release()}, "
            f"{mem:.0f} GiB RAM; load average at the end {load} (1, 5, 15 min)",
            f"- Python {platform.python_version()}, numpy {np.__version__}; "
            f"{command_version(['vips', '--version'])}"]


def _status_kb_meminfo(field: str) -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def free_disk_gb(path: Path) -> float:
    """Free space (GB) of the file system holding ``path`` (or its nearest existing parent)."""
    probe = path
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free / 1e9


def remove(*paths: Path) -> Callable[[], None]:
    """A ``prepare`` step: delete these files or directories if present."""

    def clean() -> None:
        for path in paths:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    return clean


def save_json(path: Path, meta: Mapping[str, Any], outcomes: Mapping[str, Outcome]) -> None:
    """Raw samples of every contender, with ``meta`` (sizes, options, versions)."""
    data = {"meta": dict(meta),
            "contenders": {k: {"failure": o.failure, "samples": [asdict(s) for s in o.samples]}
                           for k, o in outcomes.items()}}
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


# --------------------------------------------------------------------------- script scaffolding

DEFAULT_WORKDIR = Path("/tmp/convcli-bench")
QUICK_WORKDIR = Path("/tmp/convcli-bench-quick")
FULL_ROUNDS, QUICK_ROUNDS = 5, 2


def add_mode_options(parser: argparse.ArgumentParser, *, quick_help: str, only_default: str,
                     only_help: str) -> None:
    """The options every whole-process benchmark takes first (``--quick``, ``--rounds``, ``--workdir``).

    Then ``--only`` (default ``only_default``). ``--rounds`` and ``--workdir``
    default by mode (see :func:`resolve_mode_options`).
    """
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--rounds", type=int, default=None,
                        help=f"interleaved rounds (default {FULL_ROUNDS}, quick {QUICK_ROUNDS})")
    parser.add_argument("--workdir", type=Path, default=None,
                        help=f"scratch directory for inputs and outputs (default {DEFAULT_WORKDIR}, "
                             f"quick {QUICK_WORKDIR}: the small inputs do not replace the big ones)")
    parser.add_argument("--only", default=only_default, help=only_help)


def add_run_options(parser: argparse.ArgumentParser, *, rss_limit_help: str, timeout: float,
                    report_name: str) -> None:
    """The options every whole-process benchmark takes last.

    ``--rss-limit``, ``--timeout`` (default ``timeout`` seconds), ``--convcli``,
    ``--json-out``, ``--output`` (default ``benchmarks/<report_name>`` for a full
    run, resolved by :func:`resolve_mode_options`) and ``--clean``.
    """
    parser.add_argument("--rss-limit", type=float, default=4000.0, help=rss_limit_help)
    parser.add_argument("--timeout", type=float, default=timeout,
                        help="seconds per command before it is stopped")
    parser.add_argument("--convcli", default=None,
                        help="convcli command (default: this Python's `-m convcli`, honouring PYTHONPATH)")
    parser.add_argument("--json-out", type=Path, default=None, help="write the raw samples as JSON here")
    parser.add_argument("--output", type=Path, default=None,
                        help=f"markdown report path (default: benchmarks/{report_name} for a full run, "
                             "none for --quick)")
    parser.add_argument("--clean", action="store_true", help="delete --workdir at the end")


def resolve_mode_options(parser: argparse.ArgumentParser, args: argparse.Namespace, *,
                         parts: Sequence[str], expected: str, default_output: Path) -> None:
    """Default ``--rounds``, ``--workdir`` and ``--output`` by mode; split ``--only`` (upper case) on commas.

    Calls ``parser.error`` (exit status 2) on ``--rounds`` < 1 or an ``--only``
    that names nothing or anything not in ``parts`` (``expected`` says what it
    takes).
    """
    if args.rounds is None:
        args.rounds = QUICK_ROUNDS if args.quick else FULL_ROUNDS
    if args.rounds < 1:
        parser.error(f"--rounds must be a positive integer, got {args.rounds}")
    args.only = [p.strip().upper() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(args.only) - set(parts))
    if unknown or not args.only:
        parser.error(f"--only takes {expected}, got {','.join(unknown) or 'nothing'}")
    if args.workdir is None:
        args.workdir = QUICK_WORKDIR if args.quick else DEFAULT_WORKDIR
    if args.output is None and not args.quick:
        args.output = default_output


def disk_is_short(script: str, need_gb: float, workdir: Path) -> bool:
    """Whether ``need_gb`` passes 90 % of the free space of ``workdir`` (then said on stderr)."""
    free = free_disk_gb(workdir)
    if need_gb > free * 0.9:
        print(f"{script}: needs about {need_gb:.0f} GB in {workdir}, {free:.0f} GB free", file=sys.stderr)
        return True
    return False


def markdown_report(*, title: str, script: str, args: argparse.Namespace, elapsed: float,
                    convcli: Sequence[str], table: str, outcomes: Mapping[str, Outcome],
                    notes: Sequence[str]) -> str:
    """The markdown report: title, how it was run, the machine, the table, failures, notes."""
    mode = "--quick" if args.quick else "full"
    failures = [f"**{key} FAILED**: {o.failure}" for key, o in outcomes.items() if o.failure]
    parts = [
        f"# {title}",
        "",
        f"`python benchmarks/{script}` ({mode}, {args.rounds} rounds), "
        f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, took {elapsed / 60:.1f} min.",
        "",
        *machine_lines(),
        f"- convcli: `{' '.join(convcli)}` → {convcli_location(convcli)}",
        "",
        table,
        "",
        *failures,
        *([""] if failures else []),
        "## Notes",
        "",
        *(f"- {note}" for note in notes),
    ]
    return "\n".join(parts) + "\n"


def publish(args: argparse.Namespace, text: str, script: str, meta: Mapping[str, Any],
            outcomes: Mapping[str, Outcome]) -> None:
    """Print the report, write it to ``--output`` and the raw samples to ``--json-out``.

    The JSON ``meta`` holds ``script``, the mode, ``--rounds``, then ``meta``.
    """
    print(text, end="")
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
        progress(f"wrote {args.output}")
    if args.json_out is not None:
        save_json(args.json_out, {"script": script, "mode": "quick" if args.quick else "full",
                                  "rounds": args.rounds, **meta}, outcomes)


# --------------------------------------------------------------------------- formatting


def fmt_s(seconds: float | None) -> str:
    """Seconds for a table cell (3 significant digits; ``–`` when not measured)."""
    if seconds is None:
        return NOT_APPLICABLE
    return f"{seconds:.0f}" if seconds >= 100 else f"{seconds:.1f}" if seconds >= 10 else f"{seconds:.2f}"


def fmt_mb(mb: float | None) -> str:
    """Megabytes for a table cell (integers)."""
    return NOT_APPLICABLE if mb is None else f"{mb:.0f}"


def fmt_ratio(ratio: float | None) -> str:
    """A ratio with two significant digits (``–`` when not measured)."""
    if ratio is None or not math.isfinite(ratio):
        return NOT_APPLICABLE
    return f"{ratio:.0f}" if ratio >= 10 else f"{ratio:.2g}" if ratio >= 0.01 else f"{ratio:.1g}"


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b`` when both are measured and ``b > 0``."""
    return a / b if a is not None and b else None


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(checks: Sequence[tuple], quick: bool = False) -> str:
    """``yes`` / ``NO (…)`` / ``not measured (…)`` for checks ``(what, value, limit[, '≥'])``.

    A check holds when ``value ≤ limit`` (or ``value ≥ limit`` with ``'≥'``);
    a failing one is named with its value; ``value`` None means not measured.
    In ``--quick`` mode the verdict is marked (small images do not test the
    issue's targets).
    """
    missing, failing = [], []
    for what, value, limit, *sense in checks:
        at_least = sense == ["≥"]
        if value is None:
            missing.append(what)
        elif not (value >= limit if at_least else value <= limit):
            failing.append(f"{what} {value:.3g} {'<' if at_least else '>'} {limit:g}")
    if failing:
        text = "NO (" + "; ".join(failing) + ")"
    elif missing:
        text = "not measured (" + ", ".join(missing) + ")"
    else:
        text = "yes"
    return text + (" [quick sizes]" if quick else "")


# --------------------------------------------------------------------------- test images


class Texture:
    """Photo-like 8-bit content, produced band by band for any (H, W, C).

    Large smooth gradients and blobs (outer products of slow sinusoids,
    different per channel), a medium-scale texture, and Gaussian noise
    (σ = 3 levels, as a camera's) taken from one precomputed block at a
    random column offset per band: deflate sees noise like a photo's, and a
    band costs a few operations per pixel.
    """

    def __init__(self, height: int, width: int, channels: int, seed: int = 0, block_rows: int = 256):
        self.height, self.width, self.channels = height, width, channels
        rng = np.random.default_rng(seed)
        self._phases = rng.uniform(0, 2 * np.pi, (channels, 4)).astype(np.float32)
        self._scales = rng.uniform(0.6, 1.6, (channels, 4)).astype(np.float32)
        noise = rng.standard_normal((block_rows, width + 1024, channels), dtype=np.float32)
        noise *= 3.0
        self._noise = np.rint(noise, out=noise).astype(np.int8)  # a quarter of float32's size
        del noise
        self._rng = rng
        self.block_rows = block_rows

    def band(self, top: int, rows: int) -> np.ndarray:
        """Rows ``top … top + rows − 1`` as uint8 ``(rows, W, C)`` (``rows ≤ block_rows``)."""
        y = np.arange(top, top + rows, dtype=np.float32)[:, None]
        x = np.arange(self.width, dtype=np.float32)[None, :]
        span = float(max(self.height, self.width))
        out = np.empty((rows, self.width, self.channels), np.uint8)
        offset = int(self._rng.integers(0, 1024))
        row0 = int(self._rng.integers(0, self.block_rows - rows + 1))
        for c in range(self.channels):
            p, s = self._phases[c], self._scales[c]
            value = 128 + 70 * np.sin(7 * s[0] * y / span + p[0]) * np.cos(5 * s[1] * x / span + p[1])
            value += 35 * np.sin(23 * s[2] * y / span + p[2]) * np.sin(29 * s[3] * x / span + p[3])
            value += 10 * np.sin(y / (9 * s[0]) + p[3]) * np.cos(x / (13 * s[1]) + p[2])
            value += self._noise[row0 : row0 + rows, offset : offset + self.width, c]
            np.clip(value, 0, 255, out=value)
            out[:, :, c] = value
        return out


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".params.json")


def up_to_date(path: Path, params: Mapping[str, Any]) -> bool:
    """Whether ``path`` exists and was generated with ``params`` (a JSON side file records them)."""
    side = _sidecar(path)
    if not path.exists() or not side.exists():
        return False
    try:
        return json.loads(side.read_text()) == json.loads(json.dumps(dict(params)))
    except (OSError, ValueError):
        return False


def mark_generated(path: Path, params: Mapping[str, Any]) -> None:
    """Record ``params`` next to a generated file (see :func:`up_to_date`)."""
    _sidecar(path).write_text(json.dumps(dict(params)))


def write_tiff(path: Path, height: int, width: int, channels: int, *, layout: str = "tiled",
               tile: int = 256, rows_per_strip: int = 64, bigtiff: bool = False, seed: int = 0) -> None:
    """An uncompressed 8-bit TIFF of :class:`Texture`, written band by band through tifffile.

    ``layout`` 'tiled' (``tile``×``tile`` tiles) or 'stripped'
    (``rows_per_strip`` rows a strip); memory: one band of ``tile`` rows.
    """
    band_rows = tile if layout == "tiled" else max(rows_per_strip, 256 // rows_per_strip * rows_per_strip)
    texture = Texture(height, width, channels, seed, block_rows=band_rows)

    def segments() -> Iterator[np.ndarray]:
        for top in range(0, height, band_rows):
            band = texture.band(top, min(band_rows, height - top))
            if channels == 1:
                band = band[:, :, 0]
            if layout == "tiled":
                for left in range(0, width, tile):
                    yield band[:, left : left + tile]
            else:
                for r in range(0, band.shape[0], rows_per_strip):
                    yield band[r : r + rows_per_strip]

    import tifffile  # the benchmark's generator only; convcli reads it its own way

    shape = (height, width) if channels == 1 else (height, width, channels)
    options: dict[str, Any] = ({"tile": (tile, tile)} if layout == "tiled"
                               else {"rowsperstrip": rows_per_strip})
    partial = path.with_name(path.name + ".partial")
    tifffile.imwrite(partial, segments(), shape=shape, dtype=np.uint8, bigtiff=bigtiff, metadata=None,
                     photometric="rgb" if channels == 3 else "minisblack", **options)
    partial.replace(path)


@functools.lru_cache(maxsize=2)
def _upscaled_photo(height: int, width: int) -> np.ndarray:
    """The astronaut sample upscaled (Lanczos) to cover 1.3 × (H, W), uint8 RGB."""
    from PIL import Image

    with Image.open(SAMPLE_PHOTO) as opened:
        photo = opened.convert("RGB")
    factor = 1.3 * max(height / photo.height, width / photo.width)
    big = photo.resize((math.ceil(photo.width * factor), math.ceil(photo.height * factor)),
                       Image.Resampling.LANCZOS)
    return np.asarray(big)


def photo_pixels(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A photo-like RGB uint8 ``(H, W, 3)``: the astronaut sample upscaled (Lanczos), plus noise σ 3.

    The crop position and a mirror vary with ``seed`` (the upscaled photo is
    cached); without the sample image, :class:`Texture` takes its place.
    """
    rng = np.random.default_rng(seed)
    if not SAMPLE_PHOTO.exists():
        return Texture(height, width, 3, seed, block_rows=height).band(0, height)
    big = _upscaled_photo(height, width)
    top = int(rng.integers(0, big.shape[0] - height + 1))
    left = int(rng.integers(0, big.shape[1] - width + 1))
    noisy = rng.standard_normal((height, width, 3), dtype=np.float32)
    noisy *= 3.0
    noisy += big[top : top + height, left : left + width]
    if seed % 2:
        noisy = noisy[:, ::-1]
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def write_jpeg(path: Path, height: int, width: int, seed: int = 0, quality: int = 90) -> None:
    """A photo-like RGB JPEG (see :func:`photo_pixels`; ``_upscaled_photo.cache_clear()`` frees its cache)."""
    from PIL import Image

    partial = path.with_name(path.name + ".partial")
    Image.fromarray(photo_pixels(height, width, seed)).save(partial, format="JPEG", quality=quality)
    partial.replace(path)


def write_zarr(path: Path, height: int, width: int, chunk: int, seed: int = 0) -> None:
    """A gray uint8 zarr (format 3) array ``(H, W)`` of :class:`Texture`, one row of chunks at a time."""
    import zarr

    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    array = zarr.create_array(store=str(partial), shape=(height, width), chunks=(chunk, chunk),
                              dtype="uint8", zarr_format=3)
    texture = Texture(height, width, 1, seed, block_rows=chunk)
    for top in range(0, height, chunk):
        rows = min(chunk, height - top)
        array[top : top + rows] = texture.band(top, rows)[:, :, 0]
    shutil.rmtree(path, ignore_errors=True)
    partial.replace(path)


def tiff_summary(path: Path) -> str:
    """``W×H×C dtype, TIFF|BigTIFF, tiled|stripped, compression, size MB`` of a TIFF (header only)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            kind = "BigTIFF" if tif.is_bigtiff else "TIFF"
            shape = "×".join(str(n) for n in (page.imagewidth, page.imagelength, page.samplesperpixel))
            layout = "tiled" if page.is_tiled else "stripped"
            return (f"{shape} {page.dtype}, {kind}, {layout}, {page.compression.name.lower()}, "
                    f"{path.stat().st_size / MB:.0f} MB")
    except Exception as exc:  # a report line, never a crash
        return f"unreadable ({type(exc).__name__}: {exc})"


def image_summary(path: Path) -> str:
    """``W×H mode, size MB`` of an image file Pillow opens (header only)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return f"{image.width}×{image.height} {image.mode}, {path.stat().st_size / MB:.1f} MB"
    except Exception as exc:
        return f"unreadable ({type(exc).__name__}: {exc})"
