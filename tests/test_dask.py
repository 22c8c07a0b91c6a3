"""Chunked images and batches on Dask (convcli.distributed) against the local streaming run.

A LocalCluster (two worker processes, one thread each, bound to 127.0.0.1)
is started and stopped by the module fixture. Chunked zarr outputs are
compared with :func:`convcli.job.run` on the same input (the local
streaming path, several bands) and with scipy on the whole image.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

pytest.importorskip("convcli.pipeline.sources")
pytest.importorskip("convcli.pipeline.sinks")
distributed = pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")
tifffile = pytest.importorskip("tifffile")

from convcli.distributed import Task, execute, parse_chunks, render_chunked  # noqa: E402
from convcli.errors import OptionError  # noqa: E402
from convcli.job import Destination, Job, run  # noqa: E402

SMALL_BANDS = 3000  # bytes: the local run and the default chunks then have several bands


@pytest.fixture(scope="module")
def cluster():
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                       host="127.0.0.1", dashboard_address=":0")
    try:
        yield cluster
    finally:
        cluster.close()


def _write_zarr(path, image, chunks):
    array = zarr.create_array(store=str(path), shape=image.shape, chunks=chunks, dtype=image.dtype,
                              zarr_format=3)
    array[...] = image
    return str(path)


def _job(weights, **geometry):
    transpose = geometry.pop("transpose", False)
    method = geometry.pop("method", "auto" if transpose else "direct")
    return Job(weights=np.asarray(weights, np.float32), labels=tuple(f"k{i}" for i in range(len(weights))),
               bank_name="bank", geometry=dict(geometry, method=method), transpose=transpose,
               band_bytes=SMALL_BANDS, map_stats=True)


def _local(job, source, tmp_path, name="local.zarr"):
    record = run(job, source, Destination(output=str(tmp_path / name)))
    return record, zarr.open_array(str(tmp_path / name), mode="r")[...]


def _same_record(record, expected):
    """Equal JSON records but for the output paths."""
    strip = [{k: v for k, v in output.items() if k != "path"} for output in record["outputs"]]
    strip_expected = [{k: v for k, v in output.items() if k != "path"} for output in expected["outputs"]]
    return strip == strip_expected and dict(record, outputs=None) == dict(expected, outputs=None)


GEOMETRIES = [
    dict(padding="same", border="reflect"),
    dict(padding="same", border="wrap", stride=2),
    dict(padding=2, border="symmetric", dilation=2),
    dict(padding="valid", stride=(2, 1), dilation=(1, 2)),
    dict(padding="full", border="replicate", stride=3),
    dict(padding=(1, 0, 2, 3), border="constant:1.5", dilation=3, stride=2),
    dict(transpose=True, stride=2, padding=1, output_padding=1),
    dict(transpose=True, stride=3, padding=0, dilation=2),
]


def _random_geometries(count, seed=12):
    """Further geometries drawn at random (seeded: the same cases in every run)."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(count):
        if rng.random() < 0.3:
            stride = int(rng.integers(1, 4))
            cases.append(dict(transpose=True, stride=stride, dilation=int(rng.integers(1, 3)),
                              padding=int(rng.integers(0, 2)), output_padding=int(rng.integers(0, stride))))
        else:
            cases.append(dict(
                stride=(int(rng.integers(1, 4)), int(rng.integers(1, 3))),
                dilation=(int(rng.integers(1, 4)), int(rng.integers(1, 3))),
                padding=str(rng.choice(["same", "valid", "full"])),
                border=str(rng.choice(["zero", "reflect", "symmetric", "replicate", "wrap"])),
            ))
    return cases


@pytest.mark.parametrize("geometry", GEOMETRIES + _random_geometries(6), ids=str)
def test_chunked_equals_local_streaming(cluster, tmp_path, geometry):
    rng = np.random.default_rng(len(str(geometry)))
    image = rng.standard_normal((23, 17, 2)).astype(np.float32)
    source = _write_zarr(tmp_path / "in.zarr", image, chunks=(5, 7, 2))
    weights = rng.standard_normal((2, 3, 4)).astype(np.float32)
    job = _job(weights, **geometry)
    local_record, local = _local(job, source, tmp_path)
    task = Task(0, source, Destination(output=str(tmp_path / "dask.zarr")))
    [outcome] = execute(job, [task], scheduler=cluster.scheduler_address)
    assert outcome.error is None
    chunked = zarr.open_array(str(tmp_path / "dask.zarr"), mode="r")
    assert chunked.dtype == np.float32 and chunked.shape == local.shape
    np.testing.assert_array_equal(chunked[...], local)  # same bands as the local run: bit for bit
    assert _same_record(outcome.record, local_record)
    # other chunk heights: bit for bit for direct (transposed: the scatter order may differ by rounding)
    for rows, cols in ((1, None), (4, 3), (7, 64)):
        target = tmp_path / f"dask-{rows}.zarr"
        record = render_chunked(job, Task(0, source, Destination(output=str(target))),
                                scheduler="threads", chunks=(rows, cols))
        values = zarr.open_array(str(target), mode="r")
        if job.transpose:
            np.testing.assert_allclose(values[...], local, rtol=1e-5, atol=1e-5)
        else:
            np.testing.assert_array_equal(values[...], local)
            assert _same_record(record, local_record)
        stride = job.geometry.get("stride", 1)
        align = (stride if isinstance(stride, int) else stride[0]) if job.transpose else 1
        assert values.chunks[0] == max(align, rows // align * align)
        assert values.chunks[1] == min(cols or 256, values.shape[1])


def test_chunked_matches_scipy_on_a_tiled_tiff(cluster, tmp_path):
    """A tiled 16-bit TIFF, Gaussian-like kernel, reflect border: scipy.ndimage on the whole image."""
    rng = np.random.default_rng(5)
    image = rng.integers(0, 65535, (70, 50), dtype=np.uint16)
    path = str(tmp_path / "in.tif")
    tifffile.imwrite(path, image, tile=(16, 16))
    weights = rng.random((1, 5, 3)).astype(np.float32)
    job = _job(weights, padding="same", border="reflect")
    task = Task(0, path, Destination(output=str(tmp_path / "out.zarr")))
    [outcome] = execute(job, [task], scheduler=cluster.scheduler_address, chunks=(9, 16))
    assert outcome.error is None, outcome.error
    result = zarr.open_array(str(tmp_path / "out.zarr"), mode="r")[...]
    reference = ndimage.correlate(image.astype(np.float64), weights[0].astype(np.float64), mode="mirror")
    np.testing.assert_allclose(result[..., 0], reference, rtol=1e-5, atol=1e-2)
    assert outcome.record["maps"][0]["min"] == pytest.approx(float(result.min()))


def test_block_bounds_are_whole_chunk_rows():
    from convcli.distributed import _block_bounds

    cases = ((40000, 295, 2048), (200, 8, 64), (7, 3, 100), (5, 5, 1), (1000, 7, 1))
    for out_rows, chunk_rows, target in cases:
        bounds = _block_bounds(out_rows, chunk_rows, target)
        assert bounds[0] == 0 and bounds[-1] == out_rows and bounds == sorted(set(bounds))
        assert all(b % chunk_rows == 0 for b in bounds[:-1])  # no chunk is written by two blocks
        n_chunk_rows = -(-out_rows // chunk_rows)
        assert len(bounds) - 1 >= min(4, n_chunk_rows)
        sizes = np.diff(bounds)[:-1]
        assert all(size <= max(chunk_rows, target + chunk_rows) for size in sizes)
    assert _block_bounds(40000, 295, 2048)[1] == 7 * 295  # about one input chunk row of 2048


@pytest.mark.parametrize("transpose", [False, True])
def test_blocks_of_several_chunk_rows_stream_bands_across_chunk_rows(tmp_path, transpose):
    """Input chunk rows (32) span many output chunk rows (6) and bands (a few rows, not dividing 6):
    each block streams its bands through whole chunk rows; the result equals the local run."""
    rng = np.random.default_rng(21)
    image = rng.standard_normal((150, 13)).astype(np.float32)
    source = _write_zarr(tmp_path / "in.zarr", image, chunks=(32, 13))
    geometry = dict(transpose=True, stride=2, padding=1) if transpose else \
        dict(padding="same", border="reflect", dilation=2)
    job = _job(rng.standard_normal((2, 3, 3)), **geometry)
    _, local = _local(job, source, tmp_path)
    task = Task(0, source, Destination(output=str(tmp_path / "out.zarr")))
    record = render_chunked(job, task, scheduler="threads", chunks=(6, 5))
    values = zarr.open_array(str(tmp_path / "out.zarr"), mode="r")
    assert values.chunks == (6, 5, 2)
    if transpose:
        np.testing.assert_allclose(values[...], local, rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_array_equal(values[...], local)
    for entry, channel in zip(record["maps"], range(2)):
        assert entry["min"] == pytest.approx(float(local[..., channel].min()))
        assert entry["max"] == pytest.approx(float(local[..., channel].max()))


@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_local_dask_schedulers(tmp_path, scheduler):
    rng = np.random.default_rng(3)
    image = rng.random((19, 11)).astype(np.float32)
    source = _write_zarr(tmp_path / "in.zarr", image, chunks=(4, 4))
    job = _job(rng.random((1, 3, 3)), padding="same", border="wrap", stride=2)
    _, local = _local(job, source, tmp_path)
    task = Task(0, source, Destination(output=str(tmp_path / "out.zarr")))
    [outcome] = execute(job, [task], scheduler=scheduler, chunks=(2,))
    assert outcome.error is None
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "out.zarr"), mode="r")[...], local)


def test_chunked_failure_leaves_nothing(cluster, tmp_path):
    """A block that fails (overflow of float32) fails the input; no output and no temporary remain."""
    image = np.full((12, 9), 3e38, np.float32)
    source = _write_zarr(tmp_path / "in.zarr", image, chunks=(4, 9))
    job = _job(np.ones((1, 3, 3)), padding="same")
    task = Task(0, source, Destination(output=str(tmp_path / "out.zarr")))
    [outcome] = execute(job, [task], scheduler=cluster.scheduler_address, chunks=(2,))
    assert outcome.record is None and "overflows float32" in str(outcome.error)
    assert "in.zarr" in str(outcome.error)
    assert sorted(os.listdir(tmp_path)) == ["in.zarr"]


def test_existing_output_is_refused_before_computing(cluster, tmp_path):
    source = _write_zarr(tmp_path / "in.zarr", np.ones((6, 6), np.float32), chunks=(3, 3))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "in.k0.zarr").mkdir()
    job = Job(**{**_job(np.ones((1, 3, 3)), padding="same").__dict__, "out_format": "zarr"})
    [outcome] = execute(job, [Task(0, source, Destination(output=str(tmp_path / "out") + "/"))],
                        scheduler=cluster.scheduler_address)
    assert "exists" in str(outcome.error)
    assert os.listdir(tmp_path / "out") == ["in.k0.zarr"]


def _batch(tmp_path, count, size=(40, 30)):
    rng = np.random.default_rng(9)
    paths = []
    for i in range(count):
        path = tmp_path / f"img{i}.npy"
        np.save(path, rng.random(size).astype(np.float32))
        paths.append(str(path))
    return paths


def test_batch_on_cluster_equals_local_and_reports_a_bad_file(cluster, tmp_path):
    paths = _batch(tmp_path, 3)
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"\x93NUMPY broken")
    inputs = [paths[0], str(bad), *paths[1:]]
    job = _job(np.ones((2, 3, 3)), padding="same")
    (tmp_path / "out").mkdir()
    (tmp_path / "ref").mkdir()
    tasks = [Task(i, path, Destination(output=str(tmp_path / "out") + "/")) for i, path in enumerate(inputs)]
    outcomes = sorted(execute(job, tasks, scheduler=cluster.scheduler_address), key=lambda o: o.task.index)
    assert [o.error is None for o in outcomes] == [True, False, True, True]
    assert "bad.npy" in str(outcomes[1].error)
    for outcome in outcomes:
        if outcome.error is None:
            expected = run(job, outcome.task.source, Destination(output=str(tmp_path / "ref") + "/"))
            assert outcome.record == dict(expected, outputs=outcome.record["outputs"])
            for made, ref in zip(outcome.record["outputs"], expected["outputs"]):
                assert np.load(made["path"]).tobytes() == np.load(ref["path"]).tobytes()


def test_killed_worker_mid_batch_leaves_complete_or_absent_outputs(tmp_path):
    """SIGKILL one worker while the batch runs: each output is whole or missing; failures are reported."""
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                       host="127.0.0.1", dashboard_address=":0")
    try:
        paths = _batch(tmp_path, 6, size=(250, 250))
        job = _job(np.ones((3, 9, 9)), padding="same", border="reflect")
        (tmp_path / "out").mkdir()
        tasks = [Task(i, p, Destination(output=str(tmp_path / "out") + "/")) for i, p in enumerate(paths)]
        with distributed.Client(cluster.scheduler_address) as client:
            pids = list(client.run(os.getpid).values())
        outcomes = []
        for outcome in execute(job, tasks, scheduler=cluster.scheduler_address):
            if not outcomes:
                os.kill(pids[0], signal.SIGKILL)
            outcomes.append(outcome)
    finally:
        cluster.close()
    assert sorted(o.task.index for o in outcomes) == list(range(6))
    for outcome in outcomes:
        if outcome.error is not None:
            assert outcome.task.source in str(outcome.error)
            continue
        [made] = outcome.record["outputs"]
        reference = run(job, outcome.task.source, Destination(output=str(tmp_path / "ref.npy"), force=True))
        assert np.load(made["path"]).tobytes() == np.load(reference["outputs"][0]["path"]).tobytes()
    for name in os.listdir(tmp_path / "out"):
        if name.endswith(".npy"):
            np.load(tmp_path / "out" / name)  # complete: the header's rows are all there


def test_unreachable_scheduler_fails_fast(tmp_path):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    job = _job(np.ones((1, 3, 3)))
    started = time.monotonic()
    with pytest.raises(OptionError, match=f"cannot reach Dask scheduler at tcp://127.0.0.1:{port}"):
        list(execute(job, [Task(0, "x.npy", Destination())], scheduler=f"tcp://127.0.0.1:{port}"))
    assert time.monotonic() - started < 30  # a connect timeout, not a hang (generous: shared CI machine)


def test_option_parsing():
    assert parse_chunks("64") == (64, None) and parse_chunks("64, 32") == (64, 32)
    for bad in ("0", "a", "1,2,3", "-4", ""):
        with pytest.raises(OptionError, match="--chunks"):
            parse_chunks(bad)
    with pytest.raises(OptionError, match="--scheduler"):
        list(execute(_job(np.ones((1, 3, 3))), [Task(0, "x.npy", Destination())], scheduler="fast please"))


def test_missing_dask_names_the_extra(tmp_path):
    """With dask made unimportable, --scheduler is one line naming the extra."""
    code = (
        "import sys; sys.modules['dask'] = None; sys.modules['dask.array'] = None\n"
        "from convcli.distributed import execute, Task\n"
        "from convcli.errors import OptionError\n"
        "try:\n"
        "    list(execute(None, [Task(0, 'x', None)], scheduler='threads'))\n"
        "except OptionError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env=dict(os.environ))
    assert "pip install 'convcli[dask]'" in result.stdout


# ---------------------------------------------------------------------------
# the CLI: convcli apply --scheduler / --chunks, and the README walk-through

ROOT = Path(__file__).resolve().parents[1]


def _env():
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "convcli", "apply", *args], cwd=cwd, capture_output=True,
                          text=True, env=_env(), timeout=300)


@pytest.mark.parametrize(("method", "chunks"), [("auto", None), ("direct", "5,7")])
def test_cli_chunked_zarr_on_the_cluster_equals_local(cluster, tmp_path, method, chunks):
    """Default chunks are the local bands (exact for any strategy); other chunks exact for direct."""
    rng = np.random.default_rng(8)
    _write_zarr(tmp_path / "scan.zarr", rng.random((45, 38, 3)).astype(np.float32), chunks=(8, 8, 3))
    common = ["scan.zarr", "-k", "gaussian:sigma=1.5", "--border", "reflect", "-s", "2", "--json",
              "--method", method]
    local = _cli(*common, "-o", "local.zarr", cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    chunked = _cli(*common, "-o", "dask.zarr", "--scheduler", cluster.scheduler_address,
                   *(["--chunks", chunks] if chunks else []), cwd=tmp_path)
    assert chunked.returncode == 0, chunked.stderr
    assert json.loads(chunked.stdout.replace("dask.zarr", "local.zarr")) == json.loads(local.stdout)
    assert "wrote dask.zarr (23×19, 3 channels)" in chunked.stderr
    values = zarr.open_array(str(tmp_path / "dask.zarr"), mode="r")
    if chunks:
        assert values.chunks == (5, 7, 3)
    np.testing.assert_array_equal(values[...], zarr.open_array(str(tmp_path / "local.zarr"), mode="r")[...])


def _corrupt_zarr(path):
    """A (320, 40) float32 zarr in 16×16 chunks whose chunk c/18/2 holds garbage; c/19/0 never written.

    The corrupt chunk lies below row 256, so the client's look at the first
    rows (is the image in [0, 1]?) does not meet it: a Dask worker does.
    """
    array = zarr.create_array(store=str(path), shape=(320, 40), chunks=(16, 16), dtype="float32",
                              zarr_format=3)
    array[:304] = np.arange(304 * 40, dtype=np.float32).reshape(304, 40)
    array[304:, 16:] = 1.0
    assert not (path / "c" / "19" / "0").exists()
    chunk = path / "c" / "18" / "2"
    chunk.write_bytes(bytes(reversed(chunk.read_bytes())))  # same length, no longer a zstd frame


@pytest.mark.parametrize("scheduler", ["threads", "processes", "cluster"])
def test_cli_corrupt_chunk_is_named_and_nothing_is_written(cluster, tmp_path, scheduler):
    _corrupt_zarr(tmp_path / "in.zarr")
    address = cluster.scheduler_address if scheduler == "cluster" else scheduler
    result = _cli("in.zarr", "-k", "box", "-o", "out.zarr", "--scheduler", address, "--chunks", "8",
                  cwd=tmp_path)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    expected = "convcli: error: in.zarr: cannot decode chunk c/18/2 (rows 288-303, columns 32-39): "
    assert line.startswith(expected) and "nothing was written" not in line
    assert os.listdir(tmp_path) == ["in.zarr"]


def test_cli_unwritten_chunk_is_the_fill_value_on_dask(tmp_path):
    array = zarr.create_array(store=str(tmp_path / "in.zarr"), shape=(20, 12), chunks=(5, 6),
                              dtype="float32", fill_value=3.0, zarr_format=3)
    array[:5] = 1.0
    result = _cli("in.zarr", "-k", "box:size=1", "-o", "out.zarr", "--scheduler", "threads", "--chunks", "4",
                  cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    expected = np.concatenate([np.ones((5, 12)), np.full((15, 12), 3.0)])
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "out.zarr"), mode="r")[..., 0], expected)


def test_cli_unreachable_scheduler(tmp_path):
    import socket

    np.save(tmp_path / "a.npy", np.ones((5, 5), np.float32))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = _cli("a.npy", "-k", "sobel", "--scheduler", f"tcp://127.0.0.1:{port}", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith(f"convcli: error: cannot reach Dask scheduler at tcp://127.0.0.1:{port}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert os.listdir(tmp_path) == ["a.npy"]


def test_cli_bad_chunks_and_scheduler(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((5, 5), np.float32))
    for args, name in ((["--chunks", "0"], "--chunks"), (["--scheduler", "nowhere"], "--scheduler")):
        result = _cli("a.npy", "-k", "sobel", *args, cwd=tmp_path)
        assert result.returncode in (1, 2) and name in result.stderr


WALKTHROUGH_HEADING = "## Many images and very large images"

# The walk-through as proposed for the README; the test runs the README's own
# block once the section is there (the lead merges README.md).
WALKTHROUGH = """\
mkdir -p cluster-edges
dask scheduler --host 127.0.0.1 --port $PORT --dashboard-address :0 &
dask worker tcp://127.0.0.1:$PORT --host 127.0.0.1 --nthreads 1 &
dask worker tcp://127.0.0.1:$PORT --host 127.0.0.1 --nthreads 1 &
sleep 5
convcli apply sample_images/ -k sobel --reduce magnitude -o cluster-edges/ \\
    --scheduler tcp://127.0.0.1:$PORT
kill $(jobs -p) && wait
"""


def _walkthrough() -> str:
    """The README's cluster walk-through (the ```bash block of its scale-out section)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(WALKTHROUGH_HEADING, 1)
    if len(section) == 1:
        return WALKTHROUGH
    blocks = re.findall(r"^```bash\n(.*?)^```", section[1], flags=re.S | re.M)
    assert blocks, f"README.md has no ```bash walk-through under {WALKTHROUGH_HEADING!r}"
    return blocks[0]


def test_readme_cluster_walkthrough(tmp_path):
    """Start `dask scheduler` and two `dask worker`s on loopback, run convcli on them, stop them."""
    import shutil
    import socket

    script = _walkthrough()
    assert "dask scheduler" in script and script.count("dask worker") == 2 and "--scheduler tcp://" in script
    shutil.copytree(ROOT / "sample_images", tmp_path / "sample_images")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=dict(_env(), PORT=str(port)),
                            capture_output=True, text=True, timeout=240, start_new_session=True)
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = sorted(p.name for p in (tmp_path / "cluster-edges").iterdir())
    images = sorted(p.stem for p in (tmp_path / "sample_images").iterdir() if p.suffix == ".png")
    assert outputs == [f"{stem}.sobel-magnitude.png" for stem in images]
    for name in outputs:
        with Image.open(tmp_path / "cluster-edges" / name) as image:
            image.load()


def test_cli_a_server_that_is_no_dask_scheduler_is_one_line_fast(tmp_path):
    """An HTTP-ish server on the port: one error line, no traceback from the half-made client's __del__,
    no 10-s close wait."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    port = server.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            with contextlib.suppress(OSError):
                connection.recv(1024)
                connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" * 50)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    np.save(tmp_path / "a.npy", np.ones((5, 5), np.float32))
    try:
        started = time.monotonic()
        result = _cli("a.npy", "-k", "sobel", "--scheduler", f"tcp://127.0.0.1:{port}", cwd=tmp_path)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join(5)
        server.close()
    assert result.returncode == 1
    assert result.stderr.startswith(f"convcli: error: cannot reach Dask scheduler at tcp://127.0.0.1:{port}")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert elapsed < 9  # the half-made client's close would wait 10 s
