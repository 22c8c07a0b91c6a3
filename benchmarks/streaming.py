"""Streaming benchmark (issue 11): big images through ``convcli apply`` against the ``vips`` CLI.

Whole processes launched through GNU time (wall time, CPU time and peak
RSS of the command itself; see ``procbench.py``), medians of ``--rounds``
interleaved rounds (every command once per round, a new seeded random
order each round).

Inputs, generated into ``--workdir`` (default ``/tmp/convcli-bench``, with
``--quick`` ``/tmp/convcli-bench-quick``; not committed, kept between runs
and regenerated only when their parameters change; ``--clean`` removes
everything at the end):

=========  ==========================================================  =======
name       what                                                         full
=========  ==========================================================  =======
big.tif    20000×15000 RGB uint8, uncompressed, tiled 256×256           0.9 GB
big4.tif   40000×30000 RGB uint8, same layout (4× the area)             3.6 GB
gray.tif   50000×40000 gray uint8 BigTIFF, tiled 256×256 (2 Gpx)        2.0 GB
photo.jpg  4000×3000 RGB JPEG, quality 90 (12 MP)                       ~4 MB
=========  ==========================================================  =======

(``--tiff-layout stripped`` writes 64-row strips instead of tiles.) The TIFF
content is smooth gradients and blobs plus noise σ 3 (``procbench.Texture``),
the JPEG the astronaut sample upscaled plus noise, so that deflate works on
photo-like data. They are written band by band: the generator holds one
band of 256 rows (under 300 MB for the widest image), whatever the height.

Jobs (rows of the table):

* T1 ``big.tif`` → ``-k gaussian:sigma=2`` → tiled deflate TIFF: convcli
  (``--compress-level 6``) against ``vips gaussblur IN .pfm 2 --precision
  float | vips cast stdin OUT.tif[compression=deflate,predictor=horizontal,
  tile,tile-width=256,tile-height=256] uchar``: with float precision vips
  writes float32 pixels, so they are cast to convcli's 8 bits through a
  pipe (both processes stream; the peak is their sampled sum). Same output
  layout and deflate level (vips 8.14 cannot set the deflate level: libtiff
  uses zlib's default, 6). For information: ``vips gaussblur … --precision
  float`` writing its float32 TIFF itself, and vips's default integer
  precision;
* T2 ``big4.tif``, the same commands: peak RSS against T1's (flat memory);
* T3 ``gray.tif`` (2 gigapixels) → Gaussian σ 2 → TIFF (BigTIFF if the
  writer decides so: the report says which), convcli and vips float;
* J1 ``photo.jpg`` → ``-k sobel --reduce magnitude`` → PNG zlib 1 against
  ``vips sobel photo.jpg out.png[compression=1]``.

Each command is guarded by a resident-memory watchdog (``--rss-limit``,
default 4000 MB, whole process tree): a build that does not stream would
need ≈ 7 GB for T1 and ≈ 30 GB for T2 and is stopped (reported as failed)
instead of pushing the shared machine into the OOM killer.

Usage::

    python benchmarks/streaming.py --quick          # small sizes, 2 rounds, ~1 min, prints only
    python benchmarks/streaming.py                  # full: 5 rounds, ~25–40 min, needs ~15 GB of disk
    python benchmarks/streaming.py --only T1,J1 --rounds 7 --json-out /tmp/s.json

The exit status is 1 when a convcli command failed (vips failures are
reported, not fatal); never because a target was missed.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import procbench as pb

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = ROOT / "benchmarks" / "RESULTS-streaming.md"
FULL_ROUNDS, QUICK_ROUNDS = pb.FULL_ROUNDS, pb.QUICK_ROUNDS
SIGMA = 2
TIFF_LEVEL = 6  # libtiff's deflate level in vips 8.14 (not settable there)
PNG_LEVEL = 1

#: name → (H, W, C) per mode.
SIZES = {
    "full": {"big": (15000, 20000, 3), "big4": (30000, 40000, 3), "gray": (40000, 50000, 1),
             "photo": (3000, 4000, 3)},
    "quick": {"big": (1500, 2000, 3), "big4": (3000, 4000, 3), "gray": (2000, 2500, 1),
              "photo": (600, 800, 3)},
}
JOBS = ("T1", "T2", "T3", "J1")


@dataclass(frozen=True)
class Job:
    """One row group: an input, the commands run on it, where they write."""

    key: str
    title: str
    source: str  # name in SIZES
    contenders: list[pb.Contender]
    outputs: dict[str, Path]  # contender key → output path


def tiff_out(path: Path) -> str:
    """vips output options matching convcli's TIFF sink: tiled 256, deflate, horizontal predictor."""
    return f"{path}[compression=deflate,predictor=horizontal,tile,tile-width=256,tile-height=256]"


def vips_float_to_uchar(source: Path, out: Path) -> list[str]:
    """``vips gaussblur --precision float`` piped (float PFM) into ``vips cast … uchar``.

    With float precision, vips writes float32 pixels; the pipe gives the same
    8-bit output as convcli's (truncated, not rounded: within one level).
    """
    blur = ["vips", "gaussblur", str(source), ".pfm", str(SIGMA), "--precision", "float"]
    cast = ["vips", "cast", "stdin", tiff_out(out), "uchar"]
    return ["sh", "-c", f"{shlex.join(blur)} | {shlex.join(cast)}"]


def build_jobs(args: argparse.Namespace, inputs: dict[str, Path], convcli: list[str]) -> list[Job]:
    """The jobs selected by ``--only``, with their commands."""
    out_dir = args.workdir / "out"
    jobs = []
    for key, source, title in (("T1", "big", "TIFF → Gaussian σ 2 → TIFF"),
                               ("T2", "big4", "4× area TIFF → Gaussian σ 2 → TIFF"),
                               ("T3", "gray", "gray BigTIFF → Gaussian σ 2 → TIFF")):
        if key not in args.only:
            continue
        image = inputs[source]
        outs = {f"{key} convcli": out_dir / f"{key}-convcli.tif",
                f"{key} vips float": out_dir / f"{key}-vf.tif"}
        contenders = [
            pb.Contender(f"{key} convcli", [*convcli, "apply", str(image), "-k", f"gaussian:sigma={SIGMA}",
                                            "--compress-level", str(TIFF_LEVEL), "-q", "--force",
                                            "-o", str(outs[f"{key} convcli"])],
                         pb.remove(outs[f"{key} convcli"])),
            pb.Contender(f"{key} vips float", vips_float_to_uchar(image, outs[f"{key} vips float"]),
                         pb.remove(outs[f"{key} vips float"])),
        ]
        if key == "T1":
            outs["T1 vips float32 out"] = out_dir / "T1-vf32.tif"
            outs["T1 vips integer"] = out_dir / "T1-vi.tif"
            contenders += [
                pb.Contender("T1 vips float32 out", [
                    "vips", "gaussblur", str(image), tiff_out(outs["T1 vips float32 out"]), str(SIGMA),
                    "--precision", "float"], pb.remove(outs["T1 vips float32 out"])),
                pb.Contender("T1 vips integer", [
                    "vips", "gaussblur", str(image), tiff_out(outs["T1 vips integer"]), str(SIGMA)],
                    pb.remove(outs["T1 vips integer"])),
            ]
        jobs.append(Job(key, title, source, contenders, outs))
    if "J1" in args.only:
        outs = {"J1 convcli": out_dir / "J1-convcli.png", "J1 vips": out_dir / "J1-vips.png"}
        jobs.append(Job("J1", f"JPEG → Sobel magnitude → PNG zlib {PNG_LEVEL}", "photo", [
            pb.Contender("J1 convcli", [*convcli, "apply", str(inputs["photo"]), "-k", "sobel", "--reduce",
                                        "magnitude", "--compress-level", str(PNG_LEVEL), "-q", "--force",
                                        "-o", str(outs["J1 convcli"])], pb.remove(outs["J1 convcli"])),
            pb.Contender("J1 vips", ["vips", "sobel", str(inputs["photo"]),
                                     f"{outs['J1 vips']}[compression={PNG_LEVEL}]"],
                         pb.remove(outs["J1 vips"])),
        ], outs))
    return jobs


# --------------------------------------------------------------------------- inputs


def input_params(name: str, shape: tuple[int, int, int], layout: str) -> dict:
    """Generator parameters of one input (recorded beside it; a change regenerates it)."""
    rows, cols, channels = shape
    params = {"name": name, "rows": rows, "cols": cols, "channels": channels, "generator": 1}
    if name != "photo":
        params["layout"] = layout
    return params


def input_path(workdir: Path, name: str) -> Path:
    """Where input ``name`` lives."""
    return workdir / ("photo.jpg" if name == "photo" else f"{name}.tif")


def needed_inputs(only: Sequence[str]) -> list[str]:
    """Input names the selected jobs read."""
    source = {"T1": "big", "T2": "big4", "T3": "gray", "J1": "photo"}
    return [source[k] for k in JOBS if k in only]


def input_bytes(shape: tuple[int, int, int]) -> int:
    """Uncompressed size of an 8-bit image."""
    rows, cols, channels = shape
    return rows * cols * channels


def disk_needed_gb(names: Sequence[str], sizes: dict, workdir: Path, layout: str) -> float:
    """Rough disk need: missing inputs plus two deflated outputs (≤ input size) per TIFF job at a time."""
    need = 0.0
    for name in names:
        shape = sizes[name]
        if not pb.up_to_date(input_path(workdir, name), input_params(name, shape, layout)):
            need += input_bytes(shape) / 1e9
        need += 3 * input_bytes(shape) / 1e9 if name != "photo" else 0.1
    return need


def make_inputs(args: argparse.Namespace, sizes: dict) -> dict[str, Path]:
    """Generate (or reuse) the inputs of the selected jobs."""
    args.workdir.mkdir(parents=True, exist_ok=True)
    (args.workdir / "out").mkdir(exist_ok=True)
    paths = {}
    for name in needed_inputs(args.only):
        shape = sizes[name]
        path = input_path(args.workdir, name)
        params = input_params(name, shape, args.tiff_layout)
        paths[name] = path
        if pb.up_to_date(path, params):
            continue
        pb.progress(f"generating {path} ({shape[1]}×{shape[0]}×{shape[2]})")
        start = time.perf_counter()
        if name == "photo":
            pb.write_jpeg(path, shape[0], shape[1], seed=1)
            pb._upscaled_photo.cache_clear()
        else:
            pb.write_tiff(path, *shape, layout=args.tiff_layout, bigtiff=name == "gray", seed=2)
        pb.mark_generated(path, params)
        pb.progress(f"  done in {time.perf_counter() - start:.0f} s, {path.stat().st_size / 1e9:.2f} GB")
    return paths


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Row:
    """A table row: convcli against one vips command (medians)."""

    job: str
    title: str
    convcli_s: float | None
    vips_s: float | None
    convcli_mb: float | None
    vips_mb: float | None
    target: str

    @property
    def time_ratio(self) -> float | None:
        """convcli ÷ vips wall time."""
        return pb.ratio(self.convcli_s, self.vips_s)

    @property
    def rss_ratio(self) -> float | None:
        """convcli ÷ vips peak RSS."""
        return pb.ratio(self.convcli_mb, self.vips_mb)


def medians(outcomes: dict[str, pb.Outcome], key: str) -> tuple[float | None, float | None]:
    """(median wall s, median peak MB) of a contender; (None, None) when it failed or did not run."""
    outcome = outcomes.get(key)
    if outcome is None or outcome.failure is not None:
        return None, None
    return outcome.median("wall"), outcome.median("total_peak_mb")


def label(sizes: dict, name: str) -> str:
    """``20000×15000 RGB (0.9 GB)`` for an input."""
    rows, cols, channels = sizes[name]
    kind = {1: "gray", 3: "RGB"}[channels]
    size = input_bytes(sizes[name])
    amount = f"{size / 1e9:.1f} GB" if size >= 1e8 else f"{size / 1e6:.0f} MB"
    pixels = rows * cols / 1e6
    return f"{cols}×{rows} {kind} ({amount}, {pixels:.0f} Mpx)" if pixels >= 10 else \
        f"{cols}×{rows} {kind} ({amount}, {pixels:.2g} Mpx)"


def build_rows(outcomes: dict[str, pb.Outcome], sizes: dict, quick: bool) -> list[Row]:
    """The table: one row per (job, vips variant), plus the flat-memory row, each with its verdict."""
    rows = []
    c1, m1 = medians(outcomes, "T1 convcli")
    if "T1 convcli" in outcomes:
        vs, vm = medians(outcomes, "T1 vips float")
        rows.append(Row("T1", f"{label(sizes, 'big')} TIFF, vips --precision float", c1, vs, m1, vm,
                        pb.verdict([("RSS MB", m1, 300), ("time ratio", pb.ratio(c1, vs), 0.5)], quick)))
        vs, vm = medians(outcomes, "T1 vips float32 out")
        rows.append(Row("T1", "same, vips float alone: writes float32 (information)", c1, vs, m1, vm, "–"))
        vs, vm = medians(outcomes, "T1 vips integer")
        rows.append(Row("T1", "same, vips integer precision (information)", c1, vs, m1, vm, "–"))
    c2, m2 = medians(outcomes, "T2 convcli")
    if "T2 convcli" in outcomes:
        vs, vm = medians(outcomes, "T2 vips float")
        rows.append(Row("T2", f"{label(sizes, 'big4')} TIFF, vips --precision float", c2, vs, m2, vm, "–"))
    if "T1 convcli" in outcomes and "T2 convcli" in outcomes:
        v1 = medians(outcomes, "T1 vips float")[1]
        v2 = medians(outcomes, "T2 vips float")[1]
        flat_c, flat_v = pb.ratio(m2, m1), pb.ratio(v2, v1)
        t1, t2 = medians(outcomes, "T1 vips float")[0], medians(outcomes, "T2 vips float")[0]
        rows.append(Row("T2÷T1", "4× area ÷ 1×: time and peak RSS growth (cells are ratios)",
                        pb.ratio(c2, c1), pb.ratio(t2, t1), flat_c, flat_v,
                        pb.verdict([("RSS growth", flat_c, 1.2)], quick)))
    if "T3 convcli" in outcomes:
        c3, m3 = medians(outcomes, "T3 convcli")
        vs, vm = medians(outcomes, "T3 vips float")
        failed = 0.0 if outcomes["T3 convcli"].failure is None else 1.0
        rows.append(Row("T3", f"{label(sizes, 'gray')} BigTIFF, vips --precision float", c3, vs, m3, vm,
                        pb.verdict([("failed", failed, 0), ("RSS MB", m3, 500)], quick)))
    if "J1 convcli" in outcomes:
        cj, mj = medians(outcomes, "J1 convcli")
        vs, vm = medians(outcomes, "J1 vips")
        rows.append(Row("J1", f"{label(sizes, 'photo')} JPEG, Sobel magnitude → PNG zlib {PNG_LEVEL}",
                        cj, vs, mj, vm, pb.verdict([("time ratio", pb.ratio(cj, vs), 0.9),
                                                   ("RSS ratio", pb.ratio(mj, vm), 3.0)], quick)))
    return rows


def table(rows: Sequence[Row]) -> str:
    """The markdown table of :func:`build_rows`."""
    header = ["job", "what", "convcli s", "vips s", "convcli ÷ vips", "convcli peak MB", "vips peak MB",
              "convcli ÷ vips (RSS)", "target met"]
    body = []
    for row in rows:
        if row.job == "T2÷T1":  # its cells are ratios already
            cells = [pb.fmt_ratio(row.convcli_s), pb.fmt_ratio(row.vips_s), "–",
                     pb.fmt_ratio(row.convcli_mb), pb.fmt_ratio(row.vips_mb), "–"]
        else:
            cells = [pb.fmt_s(row.convcli_s), pb.fmt_s(row.vips_s), pb.fmt_ratio(row.time_ratio),
                     pb.fmt_mb(row.convcli_mb), pb.fmt_mb(row.vips_mb), pb.fmt_ratio(row.rss_ratio)]
        body.append([row.job, row.title, *cells, row.target])
    return pb.markdown_table(header, body)


def output_notes(jobs: Sequence[Job]) -> list[str]:
    """What each command wrote in its last round (header only)."""
    lines = []
    for job in jobs:
        for key, path in job.outputs.items():
            if path.exists():
                summary = pb.image_summary(path) if path.suffix == ".png" else pb.tiff_summary(path)
                lines.append(f"{key} wrote {summary}.")
    return lines


def report(args: argparse.Namespace, sizes: dict, jobs: Sequence[Job], outcomes: dict[str, pb.Outcome],
           convcli: list[str], elapsed: float) -> str:
    """The markdown report."""
    notes = [
        f"Medians of {args.rounds} interleaved rounds (each command once per round, a new seeded random "
        "order each round), whole processes launched through GNU time: wall time and peak RSS "
        "(MB = 10⁶ B). "
        f"Inputs are uncompressed 8-bit TIFFs ({args.tiff_layout}), generated by this script; outputs "
        f"are tiled deflate TIFFs (level {TIFF_LEVEL}, horizontal predictor) for T1–T3: vips 256×256 tiles, "
        "convcli its default (128×128; shorter, wider tiles on very wide images, e.g. 64×256 for T1).",
        f"convcli: `apply IN -k gaussian:sigma={SIGMA} --compress-level {TIFF_LEVEL} -o OUT.tif` (13×13 "
        "kernel, 2·ceil(3σ)+1 taps). `vips float` (the target's peer): `vips gaussblur IN .pfm "
        f"{SIGMA} --precision float | vips cast stdin OUT.tif[compression=deflate,predictor=horizontal,"
        "tile,tile-width=256,tile-height=256] uchar`: with float precision vips writes float32, so its "
        "result is piped through `cast` to get convcli's 8-bit output (its peak MB is the sampled sum "
        "of both processes). `vips float alone` writes that float32 TIFF (4× the bytes; information). "
        "`vips integer`: no `--precision` (integer arithmetic, 8-bit output). vips's default min-ampl "
        "0.2 cuts its mask to about 9 taps: vips does less arithmetic than convcli's 13.",
        "Peak MB: the larger of `ru_maxrss` (largest single process) and the 50 ms-sampled total of "
        "the process tree.",
        f"J1: `convcli apply photo.jpg -k sobel --reduce magnitude --compress-level {PNG_LEVEL} -o out.png` "
        f"vs `vips sobel photo.jpg out.png[compression={PNG_LEVEL}]`.",
        "T2÷T1: ratios of the medians, 4× area over 1× (target: convcli's peak RSS grows < 20 %).",
        f"Commands whose process tree passed {args.rss_limit:.0f} MB resident were stopped (--rss-limit).",
        *output_notes(jobs),
    ]
    ran = {job.key for job in jobs}
    if not ran & {"T1", "T2", "T3"}:
        notes = [note for note in notes if not note.startswith(("convcli: `apply IN", "T2÷T1"))]
    if not {"T1", "T2"} <= ran:
        notes = [note for note in notes if not note.startswith("T2÷T1")]
    if "J1" not in ran:
        notes = [note for note in notes if not note.startswith("J1: ")]
    return pb.markdown_report(title="convcli streaming benchmark (issue 11)", script="streaming.py",
                              args=args, elapsed=elapsed, convcli=convcli, outcomes=outcomes, notes=notes,
                              table=table(build_rows(outcomes, sizes, args.quick)))


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; ``--rounds`` and ``--output`` default by mode."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    pb.add_mode_options(parser, quick_help="small images, 2 rounds, prints only", only_default=",".join(JOBS),
                        only_help=f"comma-separated jobs of {','.join(JOBS)}")
    parser.add_argument("--convcli-only", action="store_true",
                        help="time convcli alone (the flat-memory and 2-Gpx rows need no peer)")
    parser.add_argument("--tiff-layout", choices=("tiled", "stripped"), default="tiled",
                        help="layout of the generated input TIFFs (tiled 256×256 or 64-row strips)")
    pb.add_run_options(parser, rss_limit_help="stop a command whose process tree passes this many MB "
                       "resident (0: no limit)", timeout=1800.0, report_name=DEFAULT_OUTPUT.name)
    args = parser.parse_args(argv)
    pb.resolve_mode_options(parser, args, parts=JOBS, expected=f"jobs of {','.join(JOBS)}",
                            default_output=DEFAULT_OUTPUT)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Generate the inputs, run the rounds, print (and save) the report."""
    args = parse_args(argv)
    start = time.perf_counter()
    sizes = SIZES["quick" if args.quick else "full"]
    need = disk_needed_gb(needed_inputs(args.only), sizes, args.workdir, args.tiff_layout)
    if pb.disk_is_short("streaming.py", need, args.workdir):
        return 2
    if pb.shutil.which("vips") is None:
        pb.progress("!!! vips not on PATH (apt-get install libvips-tools): its columns stay empty")
    convcli = pb.convcli_command(args.convcli)
    inputs = make_inputs(args, sizes)
    jobs = build_jobs(args, inputs, convcli)
    if args.convcli_only:
        jobs = [dataclasses.replace(job, contenders=[c for c in job.contenders if "convcli" in c.key])
                for job in jobs]
    contenders = [c for job in jobs for c in job.contenders]
    pb.progress(f"{len(contenders)} commands × {args.rounds} rounds")
    outcomes = pb.interleaved(contenders, args.rounds, rss_limit_mb=args.rss_limit, timeout=args.timeout)
    text = report(args, sizes, jobs, outcomes, convcli, time.perf_counter() - start)
    pb.publish(args, text, "streaming", {"sizes": sizes, "tiff_layout": args.tiff_layout, "convcli": convcli},
               outcomes)
    for job in jobs:
        for contender in job.contenders:
            contender.prepare()  # outputs off the disk
    if args.clean:
        pb.remove(args.workdir)()
    return 1 if any(o.failure for k, o in outcomes.items() if "convcli" in k) else 0


if __name__ == "__main__":
    sys.exit(main())
