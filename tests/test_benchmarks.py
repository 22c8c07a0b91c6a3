"""Smoke test of ``benchmarks/run.py --quick``: it runs, checks its peers and reports every workload.

No timing is asserted (the numbers depend on the machine); only that the
script exits 0 (every peer's output matched convcli's), prints a table row
for each workload W1–W8 whatever peers are installed, and writes its
report to ``--output``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import batch  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)
import procbench as pb  # noqa: E402
import streaming  # noqa: E402

SCRIPT = ROOT / "benchmarks" / "run.py"
WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8")


def test_quick_benchmark_reports_every_workload(tmp_path: Path) -> None:
    output = tmp_path / "r.md"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--output", str(output)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for key in WORKLOADS:
        assert re.search(rf"^\| {key}\b", result.stdout, flags=re.M), f"no table row for {key}"
    assert "MISMATCH" not in result.stdout
    assert "start-up" in result.stdout
    assert output.read_text(encoding="utf-8") == result.stdout


# --------------------------------------------------------------------------- streaming.py and batch.py
#
# The whole-process benchmarks of the streaming and scale-out issues take
# minutes on gigapixel files, so only their parts are tested here: argument
# parsing, the tables and verdicts on made-up numbers, the measuring helper
# on trivial commands, and the generators and the zarr comparison on tiny
# arrays. No timing is asserted.


def fake(wall: float, peak: float, cpu: float | None = None, tree: float = 0.0, extra: float = 0.0,
         rounds: int = 3) -> pb.Outcome:
    """An outcome whose samples have the given median (the spread around it is symmetric)."""
    cpu = wall if cpu is None else cpu
    return pb.Outcome([pb.Sample(wall * f, cpu * f, peak * f, extra * f, tree * f)
                       for f in (0.9, 1.0, 1.1)[:rounds]])


def test_streaming_arguments_default_by_mode() -> None:
    quick = streaming.parse_args(["--quick"])
    assert (quick.rounds, quick.output, quick.only) == (streaming.QUICK_ROUNDS, None, list(streaming.JOBS))
    full = streaming.parse_args(["--only", "t1, j1", "--rounds", "7"])
    assert (full.rounds, full.output, full.only) == (7, streaming.DEFAULT_OUTPUT, ["T1", "J1"])
    assert streaming.needed_inputs(full.only) == ["big", "photo"]


@pytest.mark.parametrize("argv", [["--rounds", "0"], ["--only", "T9"], ["--only", ","],
                                  ["--tiff-layout", "striped"]])
def test_streaming_rejects_bad_arguments(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        streaming.parse_args(argv)


def test_streaming_sizes_are_the_issues() -> None:
    full = streaming.SIZES["full"]
    assert streaming.input_bytes(full["big"]) == 900_000_000  # 20000×15000 RGB: 0.9 GB
    assert full["big4"][0] * full["big4"][1] == 4 * full["big"][0] * full["big"][1]
    assert full["gray"][:2] == (40000, 50000) and full["gray"][2] == 1  # 2 gigapixels
    assert full["photo"][:2] == (3000, 4000)  # 12 MP


def test_streaming_commands_use_equal_settings(tmp_path: Path) -> None:
    args = streaming.parse_args(["--quick", "--workdir", str(tmp_path)])
    inputs = {name: tmp_path / f"{name}.x" for name in ("big", "big4", "gray", "photo")}
    jobs = {job.key: job for job in streaming.build_jobs(args, inputs, ["convcli"])}
    assert list(jobs) == list(streaming.JOBS)
    commands = {c.key: c.argv for job in jobs.values() for c in job.contenders}
    assert commands["T1 convcli"][:5] == ["convcli", "apply", str(inputs["big"]), "-k", "gaussian:sigma=2"]
    piped = commands["T1 vips float"][2]
    assert "vips gaussblur" in piped and "--precision float" in piped and "vips cast stdin" in piped
    assert "compression=deflate" in piped and piped.endswith("uchar")
    assert "--precision" not in commands["T1 vips integer"]
    j1 = commands["J1 convcli"]
    assert j1[j1.index("--compress-level") + 1] == "1" and j1[j1.index("--reduce") + 1] == "magnitude"
    assert commands["J1 vips"][:2] == ["vips", "sobel"] and commands["J1 vips"][3].endswith("[compression=1]")


def test_streaming_table_ratios_and_verdicts() -> None:
    outcomes = {
        "T1 convcli": fake(4.0, 250), "T1 vips float": fake(10.0, 180),
        "T1 vips float32 out": fake(12.0, 190), "T1 vips integer": fake(3.0, 90),
        "T2 convcli": fake(16.0, 290), "T2 vips float": fake(40.0, 200),
        "T3 convcli": fake(30.0, 600), "T3 vips float": fake(20.0, 150),
        "J1 convcli": fake(1.0, 300), "J1 vips": fake(1.0, 80),
    }
    rows = {(row.job, row.title.split(",")[-1].strip()): row
            for row in streaming.build_rows(outcomes, streaming.SIZES["full"], quick=False)}
    t1 = rows[("T1", "vips --precision float")]
    assert t1.time_ratio == pytest.approx(0.4) and t1.rss_ratio == pytest.approx(250 / 180)
    assert t1.target == "yes"
    flat = next(row for row in rows.values() if row.job == "T2÷T1")
    assert flat.convcli_mb == pytest.approx(290 / 250) and flat.target == "yes"
    t3 = next(row for row in rows.values() if row.job == "T3")
    assert t3.target == "NO (RSS MB 600 > 500)"
    j1 = next(row for row in rows.values() if row.job == "J1")
    assert j1.target == "NO (time ratio 1 > 0.9; RSS ratio 3.75 > 3)"
    text = streaming.table(list(rows.values()))
    assert text.count("\n") == len(rows) + 1
    assert ("| T1 | 20000×15000 RGB (0.9 GB, 300 Mpx) TIFF, vips --precision float | 4.00 | 10.0 | 0.4 "
            "| 250 |") in text


def test_streaming_table_failed_and_missing_rows() -> None:
    outcomes = {"T1 convcli": pb.Outcome([], failure="killed: resident memory 4001 MB passed the limit"),
                "T1 vips float": fake(10.0, 180), "T3 convcli": pb.Outcome([], failure="exit status 1")}
    rows = streaming.build_rows(outcomes, streaming.SIZES["quick"], quick=True)
    t1 = rows[0]
    assert (t1.convcli_s, t1.convcli_mb, t1.time_ratio) == (None, None, None)
    assert t1.target == "not measured (RSS MB, time ratio) [quick sizes]"
    assert rows[-1].target.startswith("NO (failed 1 > 0")
    assert "| – | 10.0 | – |" in streaming.table(rows)


def test_batch_arguments_default_by_mode() -> None:
    quick = batch.parse_args(["--quick"])
    assert (quick.rounds, quick.output, quick.level) == (batch.QUICK_ROUNDS, None, 1)
    assert batch.sizes_for(quick)["count"] == 4
    full = batch.parse_args(["--count", "6", "--only", "b", "--level", "6"])
    assert batch.sizes_for(full)["count"] == 6 and full.only == ["B"] and full.output == batch.DEFAULT_OUTPUT
    assert batch.SIZES["full"]["count"] == 24 and batch.SIZES["full"]["photo"] == (3000, 4000)
    rows, cols = batch.SIZES["full"]["zarr"]
    assert rows * cols == 2_000_000_000
    for argv in (["--level", "10"], ["--count", "0"], ["--only", "X"], ["--rounds", "-1"]):
        with pytest.raises(SystemExit):
            batch.parse_args(argv)


def test_batch_table_ratios_skips_and_verdicts() -> None:
    keys = ("B convcli --jobs 1", "B convcli --jobs 2", "B vips xargs -P2",
            "Z local streaming", "Z LocalCluster")
    plan = batch.Plan(contenders=[pb.Contender(k, []) for k in keys],
                      labels={"B convcli --jobs 2": "convcli --jobs 2"})
    outcomes = {
        "B convcli --jobs 1": fake(60.0, 300, cpu=60.0),
        "B convcli --jobs 2": fake(33.0, 300, cpu=62.7),  # 190 % CPU
        "B vips xargs -P2": fake(30.0, 80, cpu=57.0, tree=160),
        "Z local streaming": fake(40.0, 250),
        "Z LocalCluster": fake(50.0, 120, extra=400, tree=130),
    }
    text = batch.build_table(outcomes, plan, "identical, bit for bit", quick=False)
    lines = {line.split(" | ")[1]: line for line in text.splitlines()[2:]}
    assert "| 33.0 | 1.1 | 190 | 300 |" in lines["convcli --jobs 2"]
    assert lines["convcli --jobs 2"].endswith("NO (RSS per worker ÷ vips 3.75 > 3) |")
    assert lines["LocalCluster"].endswith("| 50.0 | 1.2 | 100 | 400 | 130 | yes |")  # workers' VmHWM
    different = batch.build_table(outcomes, plan, "DIFFER in 2 of 9 blocks", quick=False)
    assert "NO (outputs differ 1 > 0)" in different
    outcomes["B convcli --jobs 2"] = fake(33.0, 200, cpu=49.5)  # 150 % CPU
    assert "NO (CPU % 150 < 180)" in batch.build_table(outcomes, plan, None, quick=True)
    plan.skipped["Z LocalCluster"] = "`convcli apply` has no --scheduler option yet"
    skipped = batch.build_table(outcomes, plan, None, quick=True)
    assert "| Z | LocalCluster | – | – | – | – | – | skipped: `convcli apply` has no --scheduler" in skipped


def test_help_option_detection() -> None:
    help_text = "│ --jobs  -j  <int>  Worker processes. │\n  --scheduler ADDRESS   Dask\n  --chunks-x"
    assert pb.has_option(help_text, "--jobs") and pb.has_option(help_text, "--scheduler")
    assert not pb.has_option(help_text, "--chunks") and not pb.has_option(help_text, "--job")


def test_verdict_and_formatting() -> None:
    assert pb.verdict([("a", 1.0, 1.0), ("b", 200, 180, "≥")]) == "yes"
    assert pb.verdict([("a", 1.5, 1.0), ("b", None, 1)]) == "NO (a 1.5 > 1)"
    assert pb.verdict([("a", 0.5, 1.0), ("b", None, 1)], quick=True) == "not measured (b) [quick sizes]"
    assert [pb.fmt_s(v) for v in (None, 0.123, 12.34, 123.4)] == ["–", "0.12", "12.3", "123"]
    assert [pb.fmt_ratio(v) for v in (None, 0.4, 12.0, 0.004)] == ["–", "0.4", "12", "0.004"]
    assert pb.ratio(1.0, 0.0) is None and pb.ratio(None, 2.0) is None and pb.ratio(1.0, 4.0) == 0.25
    assert fake(2.0, 100).median("wall") == 2.0 and pb.Outcome([]).median("wall") is None


def test_run_measured_reports_and_guards() -> None:
    sample = pb.run_measured([sys.executable, "-c", "pass"])
    assert sample.wall > 0 and sample.cpu >= 0 and sample.peak_mb > 0
    with pytest.raises(pb.CommandFailed, match=r"exit status 3.*boom"):
        pb.run_measured([sys.executable, "-c", "import sys; sys.exit('boom' and 3) if print('boom', "
                         "file=sys.stderr) is None else 0"])
    with pytest.raises(pb.CommandFailed, match="passed the limit 60 MB"):
        pb.run_measured([sys.executable, "-c", "import time; b = bytearray(200_000_000); time.sleep(5)"],
                        rss_limit_mb=60)


@pytest.mark.skipif(pb.GNU_TIME is None, reason="needs GNU time (/usr/bin/time)")
def test_run_measured_peak_is_the_commands_own() -> None:
    """A child's ru_maxrss starts at its parent's RSS unless launched through GNU time."""
    ballast = bytearray(300_000_000)  # 300 MB resident in this process
    ballast[::4096] = b"x" * len(ballast[::4096])
    sample = pb.run_measured([sys.executable, "-c", "pass"])
    assert sample.peak_mb < 150, sample
    del ballast


@pytest.mark.parametrize("layout", ["tiled", "stripped"])
def test_write_tiff_band_by_band(tmp_path: Path, layout: str) -> None:
    tifffile = pytest.importorskip("tifffile")
    path = tmp_path / "t.tif"
    pb.write_tiff(path, 70, 90, 3, layout=layout, tile=32, rows_per_strip=16, seed=5)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        assert page.is_tiled == (layout == "tiled") and page.compression == 1  # uncompressed
        pixels = page.asarray()
    assert pixels.shape == (70, 90, 3) and pixels.dtype == np.uint8
    assert 40 < pixels.std() < 120  # smooth content spanning the range, plus noise
    gray = tmp_path / "g.tif"
    pb.write_tiff(gray, 40, 50, 1, bigtiff=True, tile=16)
    with tifffile.TiffFile(gray) as tif:
        assert tif.is_bigtiff and tif.pages[0].shape == (40, 50)


def test_inputs_are_regenerated_only_when_their_parameters_change(tmp_path: Path) -> None:
    path = tmp_path / "p.jpg"
    assert not pb.up_to_date(path, {"rows": 8})
    pb.write_jpeg(path, 24, 32, seed=2)
    pb.mark_generated(path, {"rows": 24})
    assert pb.up_to_date(path, {"rows": 24}) and not pb.up_to_date(path, {"rows": 25})
    assert pb.image_summary(path).startswith("32×24 RGB")


def test_compare_zarr_finds_a_single_differing_value(tmp_path: Path) -> None:
    zarr = pytest.importorskip("zarr")
    data = np.random.default_rng(0).standard_normal((50, 70, 1)).astype(np.float32)
    paths = []
    for name in ("a", "b"):
        array = zarr.create_array(store=str(tmp_path / f"{name}.zarr"), shape=data.shape, chunks=(16, 16, 1),
                                  dtype="float32")
        array[:] = data
        paths.append(tmp_path / f"{name}.zarr")
    assert batch.compare_zarr(*paths).startswith("identical")
    assert batch.compare_zarr(*paths, budget_bytes=1).startswith("identical")  # one chunk a block
    changed = zarr.open_array(str(paths[1]), mode="r+")
    changed[49, 69, 0] = np.nextafter(data[49, 69, 0], np.float32(np.inf))
    assert batch.compare_zarr(*paths, budget_bytes=1).startswith("DIFFER in 1 of 20 blocks")
    assert batch.compare_zarr(paths[0], tmp_path / "missing.zarr").startswith("not compared")


def test_crossovers_times_the_transposed_family_and_reports_auto() -> None:
    """`crossovers.py --family transposed`, small image: a row per C naming the winner and auto's pick."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "crossovers.py"), "--family", "transposed",
         "--size", "64x96", "--repeat", "1"], capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = re.findall(r"^\| C=(\d+) \|.*\| (\S+) \| (\S+) \|$", result.stdout, flags=re.M)
    assert [int(c) for c, _, _ in rows] == [1, 3, 8, 16, 32, 64], result.stdout
    from convcli.engines import TRANSPOSE_ENGINES

    for _, winner, auto in rows:
        assert winner in TRANSPOSE_ENGINES and auto in TRANSPOSE_ENGINES
