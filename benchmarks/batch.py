"""Scale-out benchmark (issue 12): a JPEG batch with ``--jobs`` and a 2-gigapixel zarr on a Dask cluster.

Whole processes, launched through GNU time (see ``procbench.py``): wall
time, CPU use of the whole run (user + system of every process of the
command ÷ wall; 200 % = both cores), peak RSS of the largest single process
(for a process pool: the peak per worker) and the sampled peak of the whole
process tree. Medians of ``--rounds`` interleaved rounds (every command
once per round, a new seeded random order each round).

Batch (B rows): ``--count`` 4000×3000 photo-like JPEGs (default 24;
generated into ``--workdir``, default ``/tmp/convcli-bench``,
``/tmp/convcli-bench-quick`` with ``--quick``), Sobel
magnitude → 8-bit PNG at zlib ``--level`` (default 1) for every tool:

* ``convcli apply DIR -k sobel --reduce magnitude --compress-level L -o OUT/ --jobs 1``
  and ``--jobs 2`` (without ``--jobs`` in ``convcli apply --help``: one
  sequential run, labelled so, and no ``--jobs 2`` row);
* ``ls *.jpg | xargs -P2 -I{} vips sobel {} 'OUT/{}.png[compression=L]'``.

Chunked image (Z rows): a 50000×40000 gray uint8 zarr (format 3, 2048²
chunks; 2 gigapixels) → ``-k gaussian:sigma=2`` → ``.zarr`` (float32 maps):
the local streaming path (no ``--scheduler``) against ``--scheduler
tcp://127.0.0.1:PORT`` on a cluster this script starts on loopback
(``dask scheduler`` and two ``dask worker --nthreads 1`` processes, free
ports, the same environment and ``PYTHONPATH``) and stops at the end. The
two results are compared bit for bit, chunk block by chunk block. The
workers' peak RSS is their ``VmHWM``, reset before each run. Rows whose
options are missing (``--scheduler``), or whose input is not readable yet
(a probe on a 16×16 zarr), are reported as skipped, with the reason.

Usage::

    python benchmarks/batch.py --quick   # 4 small JPEGs, a 5 Mpx zarr, 2 rounds, ~1–2 min, prints only
    python benchmarks/batch.py           # full: 5 rounds, ~30–45 min, needs ~20 GB of disk
    python benchmarks/batch.py --only B --rounds 7 --json-out /tmp/b.json

Exit status 1 when a convcli command failed or the two zarr results
differ; never because a target was missed.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import procbench as pb

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = ROOT / "benchmarks" / "RESULTS-batch.md"
FULL_ROUNDS, QUICK_ROUNDS = pb.FULL_ROUNDS, pb.QUICK_ROUNDS
SIGMA = 2
PARTS = ("B", "Z")

SIZES = {
    "full": {"photo": (3000, 4000), "count": 24, "zarr": (40000, 50000), "chunk": 2048},
    "quick": {"photo": (600, 800), "count": 4, "zarr": (2000, 2500), "chunk": 512},
}


# --------------------------------------------------------------------------- inputs


def make_jpegs(folder: Path, count: int, shape: tuple[int, int]) -> list[Path]:
    """``count`` photo-like JPEGs in ``folder`` (reused when generated with the same parameters)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(1, count + 1):
        path = folder / f"photo-{number:02d}.jpg"
        params = {"rows": shape[0], "cols": shape[1], "seed": number, "generator": 1}
        if not pb.up_to_date(path, params):
            pb.write_jpeg(path, *shape, seed=number)
            pb.mark_generated(path, params)
        paths.append(path)
    pb._upscaled_photo.cache_clear()
    for extra in folder.glob("photo-*.jpg"):  # a previous run with a larger --count
        if extra not in paths:
            extra.unlink()
    return paths


def make_zarr(path: Path, shape: tuple[int, int], chunk: int) -> None:
    """The gray uint8 zarr input (reused when generated with the same parameters)."""
    params = {"rows": shape[0], "cols": shape[1], "chunk": chunk, "generator": 1}
    if pb.up_to_date(path, params):
        return
    pb.progress(f"generating {path} ({shape[1]}×{shape[0]}, chunks {chunk}²)")
    start = time.perf_counter()
    pb.write_zarr(path, *shape, chunk, seed=3)
    pb.mark_generated(path, params)
    pb.progress(f"  done in {time.perf_counter() - start:.0f} s")


# --------------------------------------------------------------------------- the Dask cluster


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Cluster:
    """A ``dask scheduler`` and two ``dask worker`` processes on loopback, started by this script."""

    workdir: Path
    workers: int = 2
    address: str = ""
    processes: list[subprocess.Popen] = field(default_factory=list)

    def start(self, timeout: float = 90.0) -> None:
        """Start the processes (own sessions); wait until the scheduler's log registers every worker.

        Raises
        ------
        RuntimeError
            A process exited or the workers did not register within ``timeout`` s.
        """
        port = free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        logs = self.workdir / "dask-logs"
        logs.mkdir(parents=True, exist_ok=True)
        dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
        self._spawn([*dask, "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                    logs / "scheduler.log")
        worker = [sys.executable, "-m", "distributed.cli.dask_worker", self.address, "--nthreads", "1",
                  "--nworkers", "1", "--host", "127.0.0.1", "--no-dashboard", "--memory-limit", "0",
                  "--local-directory", str(self.workdir / "dask-space")]
        for number in range(self.workers):
            self._spawn(worker, logs / f"worker-{number}.log")
        deadline = time.monotonic() + timeout
        while (logs / "scheduler.log").read_text(errors="replace").count("Register worker") < self.workers:
            dead = [p.args[2] for p in self.processes if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                why = "exited: " + ", ".join(dead) if dead else f"no {self.workers} workers in {timeout:g} s"
                raise RuntimeError(f"the Dask cluster did not start ({why}); see {logs}")
            time.sleep(0.2)
        pb.progress(f"Dask cluster up at {self.address}: {self.workers} workers × 1 thread")

    def _spawn(self, argv: list[str], log: Path) -> None:
        with open(log, "wb") as handle:
            self.processes.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=handle,
                                                   stderr=subprocess.STDOUT, start_new_session=True))

    def pids(self) -> list[int]:
        """Every process of the cluster (schedulers, nannies, workers)."""
        return [pid for process in self.processes for pid in pb.tree_pids(process.pid)]

    def cpu_seconds(self) -> float:
        """User + system seconds used so far by the cluster's processes."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in self.pids():
            with suppress(OSError, ValueError, IndexError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / ticks
        return total

    def stop(self) -> None:
        """SIGTERM each started process group, SIGKILL what is left after 10 s."""
        for process in self.processes:
            with suppress(OSError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with suppress(OSError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()


# --------------------------------------------------------------------------- output check


def open_single_array(path: Path):
    """The one array of a ``.zarr`` store (the store itself, or the only array of its root group)."""
    import zarr

    node = zarr.open(str(path), mode="r")
    if isinstance(node, zarr.Array):
        return node
    arrays = list(node.arrays())
    if len(arrays) != 1:
        raise ValueError(f"{path} holds {len(arrays)} arrays, expected one")
    return arrays[0][1]


def compare_zarr(first: Path, second: Path, budget_bytes: int = 64 * 2**20) -> str:
    """Bit-for-bit comparison of two zarr arrays, block of whole chunks by block.

    Blocks are whole chunks of ``first`` (rows of chunks, split into column
    groups so that a block stays under ``budget_bytes``). Returns
    ``identical …`` or what differs (shape, dtype, number of differing
    blocks and the largest absolute difference).
    """
    try:
        a, b = open_single_array(first), open_single_array(second)
    except Exception as exc:  # a report line
        return f"not compared ({type(exc).__name__}: {exc})"
    if a.shape != b.shape or a.dtype != b.dtype:
        return f"DIFFER: shape/dtype {a.shape} {a.dtype} vs {b.shape} {b.dtype}"
    rows, cols = a.shape[:2]
    chunk_rows, chunk_cols = a.chunks[:2]
    per_col = chunk_rows * int(np.prod(a.shape[2:], dtype=np.int64)) * a.dtype.itemsize
    group = max(1, budget_bytes // max(1, per_col * chunk_cols)) * chunk_cols
    blocks = differing = 0
    worst = 0.0
    for top in range(0, rows, chunk_rows):
        for left in range(0, cols, group):
            region = (slice(top, top + chunk_rows), slice(left, left + group))
            x, y = np.asarray(a[region]), np.asarray(b[region])
            blocks += 1
            same = (np.array_equal(x.view(f"u{x.dtype.itemsize}"), y.view(f"u{y.dtype.itemsize}"))
                    if x.dtype.kind == "f" else np.array_equal(x, y))
            if not same:
                differing += 1
                worst = max(worst, float(np.nanmax(np.abs(x.astype(np.float64) - y))))
    if differing:
        return f"DIFFER in {differing} of {blocks} blocks (max |Δ| {worst:.3g})"
    return f"identical, bit for bit ({a.shape} {a.dtype}, {blocks} blocks compared)"


# --------------------------------------------------------------------------- plan


@dataclass
class Plan:
    """What runs: the contenders, and the rows skipped with a reason."""

    contenders: list[pb.Contender] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # contender key → table label
    outputs: list[Path] = field(default_factory=list)  # removed at the end


def probe_zarr(convcli: list[str], workdir: Path) -> str | None:
    """None when ``convcli apply x.zarr … -o y.zarr`` works on a 16×16 array, else why not."""
    probe, out = workdir / "probe.zarr", workdir / "probe-out.zarr"
    pb.remove(probe, out)()
    try:
        pb.write_zarr(probe, 16, 16, 16)
    except ImportError as exc:
        return f"zarr not installed for the benchmark ({exc})"
    try:
        pb.run_measured([*convcli, "apply", str(probe), "-k", f"gaussian:sigma={SIGMA}", "-q",
                         "-o", str(out)], timeout=120)
    except pb.CommandFailed as exc:
        return f"convcli cannot filter a zarr into a zarr yet ({exc})"
    finally:
        pb.remove(probe, out)()
    return None


def plan_batch(args: argparse.Namespace, sizes: dict, convcli: list[str], help_text: str, plan: Plan) -> None:
    """The B contenders."""
    folder = args.workdir / "batch" / "jpegs"
    pb.progress(f"JPEGs: {sizes['count']} × {sizes['photo'][1]}×{sizes['photo'][0]} in {folder}")
    make_jpegs(folder, sizes["count"], sizes["photo"])
    base = [*convcli, "apply", str(folder), "-k", "sobel", "--reduce", "magnitude",
            "--compress-level", str(args.level), "-q", "--force"]
    if pb.has_option(help_text, "--jobs"):
        runs = {"B convcli --jobs 1": ["--jobs", "1"], "B convcli --jobs 2": ["--jobs", "2"]}
    else:
        runs = {"B convcli sequential": []}
        plan.skipped["B convcli --jobs 2"] = "`convcli apply` has no --jobs option yet"
    for key, extra in runs.items():
        out = args.workdir / "batch" / key.split(" ", 1)[1].replace(" ", "").replace("-", "")
        plan.contenders.append(pb.Contender(key, [*base, "-o", f"{out}/", *extra], fresh_dir(out)))
        plan.outputs.append(out)
        plan.labels[key] = key[2:]
    out = args.workdir / "batch" / "vips"
    pipeline = (f"ls *.jpg | xargs -P2 -I{{}} vips sobel {{}} "
                f"{shlex.quote(f'{out}/{{}}.png[compression={args.level}]')}")
    plan.contenders.append(pb.Contender("B vips xargs -P2", ["sh", "-c", pipeline], fresh_dir(out),
                                        cwd=folder))
    plan.outputs.append(out)
    plan.labels["B vips xargs -P2"] = "`ls *.jpg | xargs -P2 vips sobel`"


def fresh_dir(path: Path):
    """A ``prepare`` step: ``path`` emptied (created if missing)."""

    def prepare() -> None:
        pb.remove(path)()
        path.mkdir(parents=True)

    return prepare


def plan_zarr(args: argparse.Namespace, sizes: dict, convcli: list[str], help_text: str, plan: Plan,
              cluster: Cluster | None) -> None:
    """The Z contenders (the cluster is started by :func:`main` when they run)."""
    folder = args.workdir / "chunked"
    folder.mkdir(parents=True, exist_ok=True)
    why = probe_zarr(convcli, folder)
    if why is not None:
        plan.skipped["Z local streaming"] = plan.skipped["Z LocalCluster"] = why
        return
    source = folder / "big.zarr"
    make_zarr(source, sizes["zarr"], sizes["chunk"])
    local, remote = folder / "local.zarr", folder / "cluster.zarr"
    plan.outputs += [local, remote]
    command = [*convcli, "apply", str(source), "-k", f"gaussian:sigma={SIGMA}", "-q", "--force"]
    plan.contenders.append(pb.Contender("Z local streaming", [*command, "-o", str(local)], pb.remove(local)))
    plan.labels["Z local streaming"] = "local streaming (no --scheduler)"
    if not pb.has_option(help_text, "--scheduler"):
        plan.skipped["Z LocalCluster"] = "`convcli apply` has no --scheduler option yet"
    elif cluster is not None:
        plan.contenders.append(pb.Contender(
            "Z LocalCluster", [*command, "--scheduler", "ADDRESS", "-o", str(remote)], pb.remove(remote)))
        plan.labels["Z LocalCluster"] = "--scheduler, 2-worker cluster on 127.0.0.1"


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Line:
    """A table row's figures (medians)."""

    key: str
    wall: float | None
    cpu_percent: float | None
    peak_mb: float | None  # largest single process (per worker)
    tree_mb: float | None  # sampled whole tree (+ cluster processes for Z LocalCluster)


def line(outcomes: dict[str, pb.Outcome], key: str) -> Line:
    """Medians of one contender (all None when it failed or did not run)."""
    outcome = outcomes.get(key)
    if outcome is None or outcome.failure is not None or not outcome.samples:
        return Line(key, None, None, None, None)
    if key == "Z LocalCluster":  # the work happens in the workers
        return Line(key, outcome.median("wall"), outcome.median("cpu_percent"),
                    outcome.median("extra_peak_mb"), outcome.median("tree_peak_mb"))
    return Line(key, outcome.median("wall"), outcome.median("cpu_percent"), outcome.median("peak_mb"),
                outcome.median("tree_peak_mb"))


def build_table(outcomes: dict[str, pb.Outcome], plan: Plan, check: str | None, quick: bool) -> str:
    """One row per contender or skipped row: figures, ratio to its reference, verdict."""
    vips = line(outcomes, "B vips xargs -P2")
    local = line(outcomes, "Z local streaming")
    rows = []
    keys = [c.key for c in plan.contenders] + list(plan.skipped)
    order = ["B convcli --jobs 1", "B convcli sequential", "B convcli --jobs 2", "B vips xargs -P2",
             "Z local streaming", "Z LocalCluster"]
    for key in sorted(set(keys), key=lambda k: order.index(k) if k in order else len(order)):
        label = plan.labels.get(key, key[2:])
        if key in plan.skipped:
            rows.append([key[0], label, *["–"] * 5, f"skipped: {plan.skipped[key]}"])
            continue
        figures = line(outcomes, key)
        failure = outcomes[key].failure if key in outcomes else None
        reference, target = None, "–"
        if key.startswith("B convcli"):
            reference = vips
        if key == "B convcli --jobs 2":
            target = pb.verdict([("time ratio", pb.ratio(figures.wall, vips.wall), 1.2),
                                 ("CPU %", figures.cpu_percent, 180, "≥"),
                                 ("RSS per worker ÷ vips", pb.ratio(figures.peak_mb, vips.peak_mb), 3.0)],
                                quick)
        if key == "Z LocalCluster":
            reference = local
            identical = None if check is None else (0.0 if check.startswith("identical") else 1.0)
            target = pb.verdict([("time ratio", pb.ratio(figures.wall, local.wall), 1.5),
                                 ("outputs differ", identical, 0),
                                 ("RSS MB per worker", figures.peak_mb, 500)], quick)
        if key == "Z local streaming":
            target = pb.verdict([("RSS MB", figures.peak_mb, 500)], quick)
        ratio = pb.ratio(figures.wall, reference.wall) if reference is not None else None
        rows.append([key[0], label, pb.fmt_s(figures.wall), pb.fmt_ratio(ratio),
                     "–" if figures.cpu_percent is None else f"{figures.cpu_percent:.0f}",
                     pb.fmt_mb(figures.peak_mb), pb.fmt_mb(figures.tree_mb),
                     f"FAILED: {failure}" if failure else target])
    header = ["part", "command", "wall s", "÷ reference", "CPU %", "peak MB per process", "peak MB total",
              "target met"]
    return pb.markdown_table(header, rows)


def report(args: argparse.Namespace, sizes: dict, plan: Plan, outcomes: dict[str, pb.Outcome],
           check: str | None, convcli: list[str], elapsed: float) -> str:
    """The markdown report."""
    rows, cols = sizes["zarr"]
    photo_rows, photo_cols = sizes["photo"]
    notes = [
        f"Medians of {args.rounds} interleaved rounds (each command once per round, a new seeded random "
        "order each round), whole processes launched through GNU time: CPU % = user + system time of "
        "every process of the command ÷ wall time (200 % = both cores); `peak MB per process` = "
        "ru_maxrss, the largest single process (for a pool: per worker); `peak MB total` = the whole "
        "process tree's resident memory, sampled every 50 ms. MB = 10⁶ B.",
        f"B: {sizes['count']} photo-like {photo_cols}×{photo_rows} JPEGs (quality 90), `convcli apply DIR "
        f"-k sobel --reduce magnitude --compress-level {args.level} -o OUT/ [--jobs N]` vs `ls *.jpg | xargs "
        f"-P2 -I{{}} vips sobel {{}} 'OUT/{{}}.png[compression={args.level}]'`; `÷ reference`: ÷ the "
        "vips run. Target for `--jobs 2`: ≤ 1.2× vips, ≥ 180 % CPU, peak RSS per worker ≤ 3× vips's "
        "(the streaming issue's JPEG bound).",
        f"Z: {cols}×{rows} gray uint8 zarr (format 3, {sizes['chunk']}² chunks, {rows * cols / 1e9:.2g} "
        f"Gpx) → `-k gaussian:sigma={SIGMA}` → .zarr (float32 maps); `÷ reference`: ÷ local streaming. "
        "For the cluster run, `peak MB per process` is the largest VmHWM among the scheduler and "
        "worker processes (reset before each run), `peak MB total` the client's tree, and CPU % "
        "includes the cluster processes' CPU time. Target: ≤ 1.5× local, identical output, per-worker "
        "peak ≤ 500 MB (the streaming issue's 2-gigapixel bound).",
        f"Zarr outputs (last round): {check}." if check else "Zarr outputs: not compared.",
    ]
    notes = [notes[0], *(n for n in notes[1:] if n[0] in args.only)]
    return pb.markdown_report(title="convcli scale-out benchmark (issue 12)", script="batch.py", args=args,
                              elapsed=elapsed, convcli=convcli, outcomes=outcomes, notes=notes,
                              table=build_table(outcomes, plan, check, args.quick))


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; ``--rounds`` and ``--output`` default by mode."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    pb.add_mode_options(parser, quick_help="4 small JPEGs, a 5 Mpx zarr, 2 rounds, prints only",
                        only_default=",".join(PARTS), only_help="B (JPEG batch), Z (zarr on Dask), or B,Z")
    parser.add_argument("--count", type=int, default=None, help="number of JPEGs (default 24, quick 4)")
    parser.add_argument("--level", type=int, default=1, choices=range(10), metavar="0-9",
                        help="PNG zlib level for every tool (default 1)")
    pb.add_run_options(parser, rss_limit_help="stop a command whose processes (with the cluster's) pass this "
                       "many MB (0: none)", timeout=3600.0, report_name=DEFAULT_OUTPUT.name)
    args = parser.parse_args(argv)
    pb.resolve_mode_options(parser, args, parts=PARTS, expected="B, Z or B,Z", default_output=DEFAULT_OUTPUT)
    if args.count is not None and args.count < 1:
        parser.error(f"--count must be a positive integer, got {args.count}")
    return args


def sizes_for(args: argparse.Namespace) -> dict:
    """The sizes of the mode, with ``--count`` applied."""
    sizes = dict(SIZES["quick" if args.quick else "full"])
    if args.count is not None:
        sizes["count"] = args.count
    return sizes


def disk_needed_gb(sizes: dict, only: Sequence[str]) -> float:
    """Rough disk need: JPEGs and three sets of PNGs; the zarr input and two float32 outputs."""
    need = 0.0
    if "B" in only:
        need += sizes["count"] * sizes["photo"][0] * sizes["photo"][1] * 3 * 2 / 1e9
    if "Z" in only:
        rows, cols = sizes["zarr"]
        need += rows * cols * (1 + 2 * 4) / 1e9
    return need


def main(argv: Sequence[str] | None = None) -> int:
    """Generate the inputs, run the rounds (starting and stopping the cluster), print the report."""
    args = parse_args(argv)
    start = time.perf_counter()
    sizes = sizes_for(args)
    if pb.disk_is_short("batch.py", disk_needed_gb(sizes, args.only), args.workdir):
        return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    convcli = pb.convcli_command(args.convcli)
    help_text = pb.apply_help(convcli)
    plan = Plan()
    cluster = Cluster(args.workdir / "chunked") if "Z" in args.only else None
    if "B" in args.only:
        plan_batch(args, sizes, convcli, help_text, plan)
    if "Z" in args.only:
        plan_zarr(args, sizes, convcli, help_text, plan, cluster)
    check = None
    try:
        remote = next((c for c in plan.contenders if c.key == "Z LocalCluster"), None)
        if remote is not None and cluster is not None:
            try:
                cluster.start()
            except RuntimeError as exc:
                plan.contenders.remove(remote)
                plan.skipped[remote.key] = str(exc)
            else:
                remote.argv[remote.argv.index("ADDRESS")] = cluster.address
                remote.watch = cluster.pids()
                remote.extra_cpu = cluster.cpu_seconds
        pb.progress(f"{len(plan.contenders)} commands × {args.rounds} rounds")
        outcomes = pb.interleaved(plan.contenders, args.rounds, rss_limit_mb=args.rss_limit,
                                  timeout=args.timeout)
    finally:
        if cluster is not None and cluster.processes:
            cluster.stop()
            pb.progress("Dask cluster stopped")
    if all(k in outcomes and not outcomes[k].failure for k in ("Z local streaming", "Z LocalCluster")):
        folder = args.workdir / "chunked"
        pb.progress("comparing the two zarr outputs")
        check = compare_zarr(folder / "local.zarr", folder / "cluster.zarr")
    text = report(args, sizes, plan, outcomes, check, convcli, time.perf_counter() - start)
    pb.publish(args, text, "batch", {"sizes": sizes, "level": args.level, "convcli": convcli,
                                     "skipped": plan.skipped, "zarr_check": check}, outcomes)
    pb.remove(*plan.outputs)()
    if args.clean:
        pb.remove(args.workdir)()
    convcli_failed = any(o.failure for k, o in outcomes.items() if "convcli" in k or k.startswith("Z"))
    return 1 if convcli_failed or (check is not None and not check.startswith("identical")) else 0


if __name__ == "__main__":
    sys.exit(main())
