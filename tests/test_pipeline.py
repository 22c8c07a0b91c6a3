"""``convcli apply`` as a real process: pipes, chains, closed stdout, Ctrl-C.

Every test runs the installed ``convcli`` entry point (or ``python -m
convcli``) in a subprocess, so the exit codes and the bytes on stdout and
stderr are exactly what a shell sees.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"
CONVCLI = shutil.which("convcli", path=os.path.dirname(sys.executable)) or shutil.which("convcli")
COMMAND = [CONVCLI] if CONVCLI else [sys.executable, "-m", "convcli"]
SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float64)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX pipes and signals")


def run(*args, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*COMMAND, "apply", *map(str, args)], input=stdin, capture_output=True,
                          cwd=cwd, timeout=120)


def shell(script: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run a bash pipeline with ``convcli`` on PATH; ``pipefail`` so any failing stage shows."""
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(COMMAND[0]).parent), os.environ["PATH"]]))
    return subprocess.run(["bash", "-c", "set -o pipefail; " + script], capture_output=True, cwd=cwd,
                          env=env, timeout=120)


def assert_clean(stderr: bytes) -> None:
    text = stderr.decode()
    assert "Traceback" not in text and "Exception ignored" not in text, text


def png_array(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)


def gaussian(sigma: float) -> np.ndarray:
    from convcli.kernels import gaussian as make

    return make(sigma)


@pytest.fixture(scope="module")
def camera() -> np.ndarray:
    with Image.open(SAMPLES / "camera.png") as image:
        return np.asarray(image).astype(np.float64)


# ---------------------------------------------------------------------------
# pipes and chains


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_chain_npy_through_stdout_and_stdin(tmp_path, camera):
    """`apply a.png -k gaussian -f npy -o - | apply - -k sobel -o e.png` chains two layers."""
    source = SAMPLES / "camera.png"
    result = shell(f"convcli apply {source} -k gaussian -f npy -o - | convcli apply - -k sobel -o e.png",
                   tmp_path)
    assert result.returncode == 0, result.stderr
    assert_clean(result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.sobel-x.png", "e.sobel-y.png"]
    assert result.stderr.decode().count("wrote e.sobel-") == 2
    # the same chain with npy at the end equals the two correlations done by scipy
    result = shell(f"convcli apply {source} -k gaussian -f npy -o - | "
                   "convcli apply - -k sobel-x -f npy -o -", tmp_path)
    assert result.returncode == 0, result.stderr
    maps = np.load(io.BytesIO(result.stdout))
    # the CLI's default border is reflect: ndimage's "mirror" (odd kernels: the same centring)
    blurred = ndimage.correlate(camera.astype(np.float64), gaussian(1.0), mode="mirror")
    expected = ndimage.correlate(blurred, SOBEL_X, mode="mirror")
    assert maps.shape == (320, 320, 1) and maps.dtype == np.float32
    np.testing.assert_allclose(maps[:, :, 0], expected, rtol=1e-4, atol=1e-2)


def test_png_from_stdin_to_stdout(camera):
    """`cat img.png | convcli apply -k gaussian:sigma=2 - -o -` writes a PNG and nothing else."""
    result = run("-k", "gaussian:sigma=2", "-", "-o", "-", stdin=(SAMPLES / "camera.png").read_bytes())
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    assert result.stdout.startswith(b"\x89PNG\r\n\x1a\n")
    expected = ndimage.correlate(camera.astype(np.float64), gaussian(2.0), mode="mirror")  # reflect
    np.testing.assert_allclose(png_array(result.stdout), np.clip(np.rint(expected), 0, 255), atol=1)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_cat_pipeline_in_a_shell(tmp_path):
    result = shell(f"cat {SAMPLES / 'chelsea.png'} | convcli apply -k gaussian:sigma=2 - -o - > out.png",
                   tmp_path)
    assert result.returncode == 0 and result.stderr == b""
    with Image.open(tmp_path / "out.png") as image:
        assert image.format == "PNG" and image.size == (320, 213) and image.mode == "RGB"


@pytest.mark.parametrize(("data", "needle"), [(b"", b"no input"),
                                              (b"just some text\n", b"not a recognised image")])
def test_empty_or_non_image_stdin(data, needle):
    result = run("-", "-k", "sobel", "-o", "-", stdin=data)
    assert result.returncode == 1 and result.stdout == b""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(b"convcli: error: stdin") and needle in lines[0]


def test_json_is_the_only_stdout(tmp_path):
    import json

    result = run(SAMPLES / "checkerboard.png", "-k", "sobel", "--json", cwd=tmp_path)
    assert result.returncode == 0
    summary = json.loads(result.stdout)
    assert [o["path"] for o in summary["outputs"]] == ["checkerboard.sobel-x.png",
                                                       "checkerboard.sobel-y.png"]
    assert result.stderr.decode().count("wrote ") == 2


def test_batch_exit_code_and_summary(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = tmp_path / "out"
    out.mkdir()
    result = run(SAMPLES / "checkerboard.png", bad, SAMPLES / "gradient.png", "-k", "sobel-x", "-o", out)
    assert result.returncode == 1
    assert_clean(result.stderr)
    lines = result.stderr.decode().splitlines()
    assert lines[-1] == "2 of 3 inputs done, 1 failed"
    assert any(line.startswith("convcli: error: ") and "bad.png" in line for line in lines)
    assert sorted(p.name for p in out.iterdir()) == ["checkerboard.sobel-x.png", "gradient.sobel-x.png"]


# ---------------------------------------------------------------------------
# a closed stdout


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("head") is None, reason="needs head")
@pytest.mark.parametrize("options", [["-f", "npy"], ["-f", "png"], ["-f", "tiff", "--scale", "raw"]])
def test_head_closing_stdout_is_quiet(tmp_path, options):
    script = (f"convcli apply {SAMPLES / 'astronaut.png'} -k gaussian:sigma=2 {' '.join(options)} "
              "-o - 2> err.txt | head -c 10 > /dev/null; echo ${PIPESTATUS[0]}")
    result = shell(script, tmp_path)
    assert result.stdout.strip() == b"1"  # the output is larger than a pipe buffer: EPIPE, exit 1
    assert (tmp_path / "err.txt").read_bytes() == b""


@pytest.mark.parametrize("options", [["-f", "npy", "-o", "-"], ["--json", "-o", "{out}"]])
def test_write_to_a_pipe_without_reader_is_quiet(tmp_path, options):
    """The reader is gone before convcli writes: EPIPE for sure; exit 1, nothing on stderr."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        args = [str(a).replace("{out}", str(tmp_path) + "/") for a in options]
        process = subprocess.run([*COMMAND, "apply", str(SAMPLES / "chelsea.png"), "-k", "sobel",
                                  "-q", *args], stdout=write_end, stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(write_end)
    assert process.returncode == 1
    assert process.stderr == b""


# ---------------------------------------------------------------------------
# Ctrl-C


def _default_sigint() -> None:
    """In the child before exec: SIGINT back to its default, so Python installs its handler even when
    the test run itself ignores SIGINT (a background job of a non-interactive shell does)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(process: subprocess.Popen) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr.decode()


def _assert_nothing_partial(folder: Path) -> None:
    assert sorted(p.name for p in folder.rglob(".convcli-*")) == []
    for path in folder.glob("*.png"):
        with Image.open(path) as image:
            image.load()  # every file that exists is complete


def test_ctrl_c_during_a_batch(tmp_path):
    """Five images, then a FIFO nobody writes to: interrupt while the batch waits for it."""
    inputs = []
    for index in range(5):
        path = tmp_path / f"img{index}.png"
        path.write_bytes((SAMPLES / "camera.png").read_bytes())
        inputs.append(path)
    fifo = tmp_path / "stuck.png"
    os.mkfifo(fifo)
    later = tmp_path / "later.png"
    later.write_bytes((SAMPLES / "camera.png").read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    process = subprocess.Popen([*COMMAND, "apply", *map(str, inputs), str(fifo), str(later),
                                "-k", "kirsch", "-o", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_default_sigint)
    deadline = time.monotonic() + 90
    while len(list(out.glob("img4.*.png"))) < 8 and process.poll() is None:
        assert time.monotonic() < deadline, "the batch did not reach the FIFO"
        time.sleep(0.05)
    time.sleep(0.2)
    code, stderr = _interrupt(process)
    assert code == 130
    assert "Traceback" not in stderr
    assert stderr.splitlines()[-1] == "convcli: interrupted"
    assert len(list(out.glob("img*.png"))) == 5 * 8
    assert list(out.glob("later.*")) == []  # stopped at once, the rest not started
    _assert_nothing_partial(out)


def test_ctrl_c_during_a_large_image(tmp_path):
    big = tmp_path / "big.npy"
    rng = np.random.default_rng(1)
    np.save(big, (rng.random((2500, 2500, 3), dtype=np.float32) * 255))
    out = tmp_path / "out"
    out.mkdir()
    process = subprocess.Popen([*COMMAND, "apply", str(big), "-k", "gaussian:sigma=6",
                                "--method", "direct", "-f", "png", "-o", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_default_sigint)
    time.sleep(1.5)
    assert process.poll() is None, "finished before the interrupt; make the image larger"
    code, stderr = _interrupt(process)
    assert code == 130
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == "convcli: interrupted"
    assert list(out.iterdir()) == []
    _assert_nothing_partial(tmp_path)


# ---------------------------------------------------------------------------
# progress on a terminal


def test_progress_goes_to_a_terminal_stderr_only(tmp_path):
    """With stderr on a pty a batch shows rich progress there; stdout (--json) stays pure data."""
    import json
    import pty

    out = tmp_path / "out"
    out.mkdir()
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen([*COMMAND, "apply", str(SAMPLES / "camera.png"),
                                    str(SAMPLES / "checkerboard.png"), "-k", "sobel", "-o", str(out),
                                    "--json"], stdout=subprocess.PIPE, stderr=terminal)
        os.close(terminal)
        stdout, _ = process.communicate(timeout=120)
        seen = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal side is closed and drained
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(controller)
    assert process.returncode == 0
    summary = json.loads(stdout)
    assert summary["succeeded"] == 2
    text = seen.decode(errors="replace")
    assert "convcli apply" in text  # the progress line
    assert "wrote " in text and "2 of 2 inputs done, 0 failed" in text
