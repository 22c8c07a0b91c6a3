"""Every bad input to ``convcli apply`` gets one clear line, the right exit code, and loses nothing.

Each error test checks the whole contract: exit code 1 (2 for Click usage
errors), exactly one line on stderr starting ``convcli: error:`` that names
the file, spec or parameter, no traceback, and nothing half-written. The
full-disk and Ctrl-C cases replace the temporary file of
:func:`convcli.imageio.write_output` with one whose ``write`` raises. The
fuzz tests drive the option parsers and the kernel-spec parser through the
CLI with hypothesis: nothing may escape but the package's own errors.
"""

from __future__ import annotations

import errno
import io
import os
import struct
import subprocess
import sys
import tempfile
import warnings
import zlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from convcli import imageio
from convcli.cli import app
from convcli.errors import ConvcliError
from convcli.geometry import parse_int_pair, parse_padding_text
from convcli.kernels import GENERATORS
from convcli.presets import list_presets

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"
RNG = np.random.default_rng(11)

runner = CliRunner()


def apply(*args, stdin: bytes | None = None):
    return runner.invoke(app, ["apply", *map(str, args)], input=stdin)


def one_line_error(result, *needles: str, code: int = 1) -> str:
    """The error contract; returns the message line."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.exit_code == code, (result.exit_code, result.stderr)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("convcli: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".convcli-*"))


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


SMALL = RNG.integers(0, 256, (12, 14, 3), dtype=np.uint8)


@pytest.fixture
def small_png(tmp_path) -> Path:
    path = tmp_path / "small.png"
    path.write_bytes(png_bytes(SMALL))
    return path


@pytest.fixture
def out_dir(tmp_path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


# ---------------------------------------------------------------------------
# image input


def test_missing_path(tmp_path, out_dir):
    one_line_error(apply(tmp_path / "nope.png", "-k", "sobel", "-o", out_dir), "nope.png", "no such file")


def test_directory_with_no_images(tmp_path, out_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    one_line_error(apply(empty, "-k", "sobel", "-o", out_dir), "empty", "no image files")


def test_zero_byte_file(tmp_path, out_dir):
    path = tmp_path / "zero.png"
    path.write_bytes(b"")
    one_line_error(apply(path, "-k", "sobel", "-o", out_dir), "zero.png", "empty file")


def test_text_file_named_png(tmp_path, out_dir):
    path = tmp_path / "notes.png"
    path.write_text("these are notes, not pixels\n")
    one_line_error(apply(path, "-k", "sobel", "-o", out_dir), "notes.png", "not a recognised image")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_image(tmp_path, out_dir, fmt):
    buffer = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, format=fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    one_line_error(apply(path, "-k", "sobel", "-o", out_dir), path.name, "truncated")
    assert list(out_dir.iterdir()) == []


def test_png_with_bad_crc(tmp_path, out_dir):
    data = bytearray(png_bytes(SMALL))
    idat = data.index(b"IDAT")
    data[idat + 6] ^= 0x01  # one bit of compressed pixel data; the stored CRC no longer matches
    path = tmp_path / "crc.png"
    path.write_bytes(bytes(data))
    one_line_error(apply(path, "-k", "sobel", "-o", out_dir), "crc.png", "CRC")


def test_pixel_limit_is_checked_from_the_header(tmp_path, out_dir):
    """A 100000×100000 header with 10 bytes of data: refused by size, never decoded."""
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    path = tmp_path / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b""))
    one_line_error(apply(path, "-k", "sobel", "-o", out_dir), "bomb.png", "exceeds the limit",
                   "--max-pixels")
    small = tmp_path / "small.png"
    small.write_bytes(png_bytes(SMALL))
    one_line_error(apply(small, "-k", "sobel", "--max-pixels", "100", "-o", out_dir), "small.png",
                   "168 pixels exceeds the limit of 100")


def test_unsupported_mode(tmp_path, out_dir):
    path = tmp_path / "lab.tiff"
    Image.new("LAB", (5, 4)).save(path)
    one_line_error(apply(path, "-k", "sobel", "-o", out_dir), "lab.tiff", "mode 'LAB' is not supported")


@pytest.mark.parametrize(("array", "needle"), [
    (np.zeros((2, 3, 4, 5)), "must be (H, W) or (H, W, C)"),
    (np.array([["a", "b"]]), "not supported"),
])
def test_bad_npy_input(tmp_path, out_dir, array, needle):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    one_line_error(apply(path, "-k", "sobel", "-o", out_dir), "bad.npy", needle)


def test_pickled_npy_is_never_loaded(tmp_path, out_dir):
    path = tmp_path / "pickle.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    one_line_error(apply(path, "-k", "sobel", "-o", out_dir), "pickle.npy", "pickled")


@pytest.mark.parametrize(("data", "needle"), [(b"", "no input"), (b"hello\n", "not a recognised image")])
def test_empty_or_non_image_stdin(data, needle):
    one_line_error(apply("-", "-k", "sobel", "-o", "-", stdin=data), "stdin", needle)


# ---------------------------------------------------------------------------
# kernel specs


@pytest.mark.parametrize(("spec", "needles"), [
    ("sobl", ["'sobl'", "did you mean 'sobel'"]),
    ("gausian:sigma=2", ["did you mean 'gaussian'"]),
    ("1,2,3;4,5", ["'1,2,3;4,5'", "ragged"]),
    ("1,0,x;1,1,1", ["'1,0,x;1,1,1'", "'x' is not a number"]),
    ("1,nan;0,1", ["'1,nan;0,1'", "finite"]),
    ("1,inf;0,1", ["'1,inf;0,1'", "finite"]),
    ("1,-inf;0,1", ["finite"]),
    ("", ["empty kernel spec"]),
    ("   ", ["empty kernel spec"]),
    ("gaussian:sigma=-1", ["'gaussian:sigma=-1'", "sigma"]),
    ("box:size=0", ["'box:size=0'", "size"]),
    ("gaussian:sigma=abc", ["'gaussian:sigma=abc'", "sigma", "not a number"]),
    ("gaussian:radius=3", ["'gaussian:radius=3'", "radius"]),
    ("sobel:size=3", ["'sobel:size=3'", "no parameters"]),
    ("missing/kernel.npy", ["kernel file not found: missing/kernel.npy"]),
    ("nothere.txt", ["kernel file not found: nothere.txt"]),
])
def test_bad_kernel_spec(small_png, out_dir, spec, needles):
    one_line_error(apply(small_png, "-k", spec, "-o", out_dir), *needles)
    assert list(out_dir.iterdir()) == []


def test_bad_kernel_files(tmp_path, small_png, out_dir):
    text = tmp_path / "ragged.txt"
    text.write_text("1 2 3\n4 5\n")
    one_line_error(apply(small_png, "-k", text, "-o", out_dir), "ragged.txt")
    five_d = tmp_path / "five.npy"
    np.save(five_d, np.ones((1, 1, 3, 3, 3)))
    one_line_error(apply(small_png, "-k", five_d, "-o", out_dir), "five.npy")
    folder = tmp_path / "kdir.npy"
    folder.mkdir()
    one_line_error(apply(small_png, "-k", folder, "-o", out_dir), "kdir.npy", "directory")


def test_kernel_larger_than_the_padded_image(small_png, out_dir):
    line = one_line_error(apply(small_png, "-k", "box:size=15", "-p", "valid", "-o", out_dir),
                          "small.png", "box:size=15", "larger than the padded input")
    assert "12 + 0 + 0" in line


@pytest.mark.parametrize(("spec", "options", "needles"), [
    ("1e39", [], ["-k 1e39", "float32 range", "--dtype float64"]),
    ("1e37,1e37;1e37,1e37", ["--channels", "sum"], ["overflows float32", "--dtype float64"]),
])
def test_overflow_is_an_error_not_a_warning(small_png, out_dir, spec, options, needles):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        one_line_error(apply(small_png, "-k", spec, *options, "-o", out_dir), *needles)
    assert [str(w.message) for w in caught] == []  # would be printed on stderr by the CLI


def test_bank_channel_mismatch_in_sum_mode(tmp_path, small_png, out_dir):
    bank = tmp_path / "rgba_bank.npy"
    np.save(bank, np.ones((2, 3, 3, 4)))
    one_line_error(apply(small_png, "-k", bank, "--channels", "sum", "-o", out_dir),
                   "small.png", "rgba_bank.npy", "C=4", "C=3")


# ---------------------------------------------------------------------------
# geometry


@pytest.mark.parametrize(("options", "needles"), [
    (["-s", "0"], ["`stride`", "0"]),
    (["-s", "-2"], ["`stride`", "-2"]),
    (["-s", "2,0"], ["`stride`"]),
    (["-s", "two"], ["`stride`", "'two'"]),
    (["-s", "1,2,3"], ["`stride`", "'1,2,3'"]),
    (["-d", "0"], ["`dilation`"]),
    (["-d", "-1,1"], ["`dilation`"]),
    (["-p", "-1"], ["`padding`", "negative"]),
    (["-p", "1,2,-3,4"], ["`padding`", "negative"]),
    (["-p", "1,2,3"], ["`padding`", "3 values"]),
    (["-p", "middle"], ["`padding`", "valid, same, full", "'middle'"]),
    (["--border", "mirror"], ["`border`", "'mirror'"]),
    (["--border", "constant:abc"], ["border"]),
    (["--transpose", "-s", "2", "--output-padding", "2"], ["output_padding", "2"]),
    (["--output-padding", "1"], ["--output-padding", "--transpose"]),
    (["--bias", "one"], ["`bias`", "'one'"]),
    (["--bias", "nan"], ["`bias`", "finite"]),
    (["--bias", "1,2,3"], ["`bias`", "3"]),
    (["--scale", "loud"], ["`scale`", "'loud'"]),
    (["--method", "magic"], ["`method`", "'magic'"]),
    (["--dtype", "float16"], ["`dtype`", "float16"]),
    (["--bit-depth", "12"], ["bit-depth", "12"]),
    (["--max-pixels", "-5"], ["max_pixels", "-5"]),
])
def test_bad_geometry_and_options(small_png, out_dir, options, needles):
    one_line_error(apply(small_png, "-k", "sobel", *options, "-o", out_dir), *needles)
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("options", [["--channels", "rainbow"], ["--reduce", "mean"], ["-f", "gif"],
                                     ["--compress-level", "10"], ["--alpha", "premultiply"], ["--nope"]])
def test_unknown_choice_is_a_usage_error(small_png, out_dir, options):
    result = apply(small_png, "-k", "sobel", *options, "-o", out_dir)
    line = one_line_error(result, options[0], "convcli apply --help", code=2)
    assert "Value error" not in line and "╭" not in line
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize(("args", "needle"), [
    (["apply", "x.png", "--kernel"], "--kernel"),
    (["apply"], "Missing argument"),
    (["frobnicate"], "No such command"),
    (["kernels", "show"], "Missing argument"),
    (["shape", "5", "-k", "3", "--channels-in", "x"], "--channels-in"),
])
def test_usage_errors_are_one_line_in_a_real_process(args, needle):
    result = subprocess.run([sys.executable, "-m", "convcli", *args], capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("convcli: error: ") and needle in lines[0], lines


@pytest.mark.parametrize("options", [["-p", "30000"], ["-d", "5000"], ["-p", "0,0,0,9000000"],
                                     ["--transpose", "-s", "20000"]])
def test_absurd_working_image_is_refused_before_allocating(small_png, out_dir, options):
    one_line_error(apply(small_png, "-k", "sobel", *options, "-o", out_dir),
                   "small.png", "-k sobel", "working image", "--max-pixels")


def test_working_image_limit_follows_max_pixels(small_png, out_dir):
    one_line_error(apply(small_png, "-k", "sobel-x", "-p", "20", "--max-pixels", "1000",
                         "-o", out_dir), "52×54 working image")
    result = apply(small_png, "-k", "sobel-x", "-p", "20", "-o", out_dir)
    assert result.exit_code == 0, result.stderr


# ---------------------------------------------------------------------------
# outputs


def test_missing_output_directory(small_png, tmp_path):
    # -o DIR/ (a trailing slash) creates the directory (issue 14); a file's parent is not created
    assert apply(small_png, "-k", "sobel", "-o", f"{tmp_path / 'no' / 'such'}/").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "no" / "such").iterdir()) == [
        "small.sobel-x.png", "small.sobel-y.png"]
    one_line_error(apply(small_png, "-k", "sobel-x", "-o", tmp_path / "none" / "x.png"),
                   "output directory", "does not exist")


def test_output_directory_is_a_file(small_png, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_line_error(apply(small_png, "-k", "sobel-x", "-o", blocker / "x.png"), "is not a directory")


def test_unknown_output_suffix(small_png, tmp_path):
    one_line_error(apply(small_png, "-k", "sobel-x", "-o", tmp_path / "x.bmp"), "'.bmp'", "-f")
    assert list(tmp_path.glob("x*")) == []


def test_stdout_conflicts(small_png, tmp_path):
    one_line_error(apply(small_png, "-k", "sobel", "-o", "-"), "2 maps cannot go to stdout")
    one_line_error(apply(small_png, "-k", "sobel", "--json", "-o", "-"), "--json")
    one_line_error(apply(small_png, small_png, "-k", "sobel-x", "-o", "-"), "batch")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into read-only directories")
def test_unwritable_output_directory_for_real(small_png, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        one_line_error(apply(small_png, "-k", "sobel-x", "-o", locked), "permission denied")
    finally:
        locked.chmod(0o700)


_REAL_TEMPORARY = tempfile.NamedTemporaryFile


class _FailingTemporary:
    """A real temporary file whose ``write`` raises ``error`` (full disk, Ctrl-C)."""

    created: ClassVar[list[str]] = []

    def __init__(self, error: BaseException, **kwargs) -> None:
        self._file = _REAL_TEMPORARY(**kwargs)
        self.name = self._file.name
        self._error = error
        _FailingTemporary.created.append(self.name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self._file.close()

    def write(self, data) -> int:
        self._file.write(data[: len(data) // 2])  # half of it lands on disk first
        self._file.flush()
        raise self._error

    def __getattr__(self, name):
        return getattr(self._file, name)


def _fail_writes(monkeypatch, error: BaseException) -> None:
    _FailingTemporary.created = []
    monkeypatch.setattr(imageio.tempfile, "NamedTemporaryFile",
                        lambda **kwargs: _FailingTemporary(error, **kwargs))


def test_full_disk_leaves_nothing(monkeypatch, small_png, out_dir):
    _fail_writes(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    one_line_error(apply(small_png, "-k", "sobel-x", "-o", out_dir), "small.sobel-x.png",
                   "no space left on device")
    assert _FailingTemporary.created, "the fake writer was not used"
    assert list(out_dir.iterdir()) == []  # neither the target nor the .convcli-* temporary


def test_unwritable_directory_is_one_line(monkeypatch, small_png, out_dir):
    def refuse(**kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(imageio.tempfile, "NamedTemporaryFile", refuse)
    one_line_error(apply(small_png, "-k", "sobel-x", "-o", out_dir), "permission denied")


def test_interrupt_while_writing_exits_130_and_leaves_nothing(monkeypatch, small_png, out_dir):
    _fail_writes(monkeypatch, KeyboardInterrupt())
    result = apply(small_png, "-k", "sobel", "-o", out_dir)
    assert result.exit_code == 130
    assert result.stderr.strip() == "convcli: interrupted"
    assert _FailingTemporary.created
    assert list(out_dir.iterdir()) == []


def test_full_disk_in_a_batch_is_reported_per_file(monkeypatch, small_png, tmp_path, out_dir):
    other = tmp_path / "other.png"
    other.write_bytes(small_png.read_bytes())
    _fail_writes(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    result = apply(small_png, other, "-k", "sobel-x", "-o", out_dir)
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert result.stderr.count("no space left on device") == 2
    assert result.stderr.splitlines()[-1] == "0 of 2 inputs done, 2 failed"
    assert list(out_dir.iterdir()) == []


def test_existing_file_is_kept_without_force(small_png, out_dir):
    target = out_dir / "small.sobel-x.png"
    target.write_bytes(b"precious")
    one_line_error(apply(small_png, "-k", "sobel", "-o", out_dir), "small.sobel-x.png", "--force")
    assert target.read_bytes() == b"precious"
    assert leftovers(out_dir) == []


def test_input_is_never_overwritten(small_png):
    before = small_png.read_bytes()
    one_line_error(apply(small_png, "-k", "identity", "-o", small_png, "--force"),
                   "refusing to overwrite an input")
    assert small_png.read_bytes() == before


# ---------------------------------------------------------------------------
# batches


def test_batch_goes_on_after_every_kind_of_bad_file(tmp_path, small_png, out_dir):
    zero = tmp_path / "zero.png"
    zero.write_bytes(b"")
    text = tmp_path / "text.png"
    text.write_text("hello")
    cut = tmp_path / "cut.png"
    cut.write_bytes(small_png.read_bytes()[:60])
    tiny = tmp_path / "tiny.png"
    tiny.write_bytes(png_bytes(np.zeros((2, 2), np.uint8)))
    empty = tmp_path / "emptydir"
    empty.mkdir()
    sources = [zero, small_png, text, tmp_path / "gone.png", cut, empty, tiny]
    result = apply(*sources, "-k", "box:size=5", "-p", "valid", "-o", out_dir)
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert [p.name for p in out_dir.iterdir()] == ["small.box-5.png"]
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("convcli: error: ")]
    for source, line in zip([zero, text, tmp_path / "gone.png", cut, empty, tiny], errors):
        assert source.name in line
    assert len(errors) == 6
    assert lines[-1] == "1 of 7 inputs done, 6 failed"
    assert leftovers(tmp_path) == []


def test_batch_all_good_exits_0(small_png, tmp_path, out_dir):
    other = tmp_path / "other.png"
    other.write_bytes(small_png.read_bytes())
    result = apply(small_png, other, "-k", "sobel-x", "-o", out_dir)
    assert result.exit_code == 0
    assert result.stderr.splitlines()[-1] == "2 of 2 inputs done, 0 failed"


def test_unexpected_exception_is_one_line(monkeypatch, small_png, out_dir):
    """A bug (not a ConvcliError) still gives one line and exit 1, not a traceback."""
    from convcli.batch import Batch

    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(Batch, "run_input", broken)
    result = apply(small_png, "-k", "sobel", "-o", out_dir)
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("convcli: internal error: ZeroDivisionError: boom")


# ---------------------------------------------------------------------------
# fuzzing: nothing escapes but ConvcliError

OPTION_TEXT = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="0123456789,;x -+.", max_size=10),
    st.sampled_from(["valid", "same", "full", "SAME", "0", "1,1", "2,3", "1,2,3,4", "-1", "3x3"]),
)


@settings(max_examples=200)
@given(OPTION_TEXT)
def test_fuzz_geometry_parsers(text):
    """Only ConvcliError escapes; whatever parses is a valid value."""
    try:
        rows, cols = parse_int_pair(text, "stride")
        assert rows >= 1 and cols >= 1
    except ConvcliError as exc:
        assert "`stride`" in str(exc)
    try:
        rows, cols = parse_int_pair(text, "output-padding", minimum=0)
        assert rows >= 0 and cols >= 0
    except ConvcliError as exc:
        assert "`output-padding`" in str(exc)
    try:
        padding = parse_padding_text(text)
        assert padding in ("valid", "same", "full") or (len(padding) == 4 and min(padding) >= 0)
    except ConvcliError as exc:
        assert "`padding`" in str(exc)


def _cli_contract(result) -> None:
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1, 2), result.exit_code
    if result.exit_code == 1:
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("convcli: error: "), lines


@pytest.fixture(scope="module")
def tiny_png(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "tiny.png"
    path.write_bytes(png_bytes(RNG.integers(0, 256, (5, 6), dtype=np.uint8)))
    return path


@settings(max_examples=40)
@given(option=st.sampled_from(["--stride", "--dilation", "--padding", "--output-padding", "--border",
                               "--bias", "--scale"]),
       text=OPTION_TEXT, transpose=st.booleans())
def test_fuzz_options_through_the_cli(tiny_png, option, text, transpose):
    extra = ["--transpose"] if transpose else []
    _cli_contract(apply(tiny_png, "-k", "sobel", f"{option}={text}", *extra, "--max-pixels", "10000",
                        "-f", "npy", "-o", "-"))


_NAMES = [info.name for info in list_presets()] + list(GENERATORS)
SPEC_TEXT = st.one_of(
    st.text(max_size=20),
    st.text(alphabet="0123456789,; x:.-+e/\n", max_size=24),
    st.builds(lambda name, params: f"{name}:{params}", st.sampled_from(_NAMES),
              st.text(alphabet="sigmalthetsizeupg=,.-0123456789", max_size=16)),
)


@settings(max_examples=60)
@given(SPEC_TEXT)
def test_fuzz_kernel_specs_through_the_cli(tiny_png, spec):
    _cli_contract(apply(tiny_png, "-k", spec, "--max-pixels", "10000", "-f", "npy", "-o", "-"))


PNG = png_bytes(RNG.integers(0, 256, (6, 7, 3), dtype=np.uint8))


@settings(max_examples=40)
@given(st.one_of(
    st.binary(max_size=200),
    st.builds(lambda at, value: PNG[:at] + bytes([value]) + PNG[at + 1:],
              st.integers(0, len(PNG) - 1), st.integers(0, 255)),
    st.builds(lambda at: PNG[:at], st.integers(0, len(PNG))),
))
def test_fuzz_stdin_bytes_through_the_cli(data):
    _cli_contract(apply("-", "-k", "sobel-x", "-f", "npy", "-o", "-", stdin=data))


def test_one_existing_output_stops_the_whole_set_before_any_write(small_png, out_dir):
    (out_dir / "g.sobel-y.png").write_bytes(b"keep me")
    result = apply(small_png, "-k", "sobel", "-o", out_dir / "g.png", "--montage", out_dir / "m.png")
    one_line_error(result, "g.sobel-y.png", "--force")
    assert sorted(p.name for p in out_dir.iterdir()) == ["g.sobel-y.png"]  # no sobel-x map, no montage
    assert (out_dir / "g.sobel-y.png").read_bytes() == b"keep me"


def test_montage_target_that_exists_stops_the_maps_too(small_png, out_dir):
    (out_dir / "m.png").write_bytes(b"keep me")
    result = apply(small_png, "-k", "sobel", "-o", out_dir / "g.png", "--montage", out_dir / "m.png")
    one_line_error(result, "m.png", "--force")
    assert sorted(p.name for p in out_dir.iterdir()) == ["m.png"]


@pytest.mark.parametrize(("options", "needles"), [
    (["-f", "png", "-o", "{out}/x.npy"], ["x.npy", "npy", "png"]),
    (["-f", "npy", "-o", "{out}/x.tiff"], ["x.tiff", "tiff", "npy"]),
    (["-o", "{out}/x.png", "--montage", "{out}/m.jpg"], ["--montage", "m.jpg", ".png"]),
])
def test_format_and_suffix_must_agree(small_png, out_dir, options, needles):
    args = [a.replace("{out}", str(out_dir)) for a in options]
    one_line_error(apply(small_png, "-k", "sobel-x", *args), *needles)
    assert list(out_dir.iterdir()) == []


def test_json_summary_also_when_the_only_input_fails(tmp_path):
    import json

    result = apply(tmp_path / "missing.png", "-k", "box", "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["succeeded"] == 0 and summary["failed"][0]["input"].endswith("missing.png")
    assert result.stderr.startswith("convcli: error: ") and "missing.png" in result.stderr


# ---------------------------------------------------------------- special files as -o targets


def _read_fifo_in_background(path: Path) -> tuple[Any, dict]:
    import threading

    got: dict = {}

    def reader() -> None:
        with open(path, "rb") as fifo:
            got["data"] = fifo.read()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    return thread, got


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes")
@pytest.mark.parametrize("fmt", ["png", "tiff", "npy", "jpeg"])
def test_a_named_pipe_target_is_written_through_not_replaced(tmp_path, fmt):
    """-o FIFO (and so /dev/null, /dev/stdout): the bytes go into it; it stays a pipe (with --force too)."""
    import stat

    image = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(image)
    fifo = tmp_path / "out.pipe"
    os.mkfifo(fifo)
    thread, got = _read_fifo_in_background(fifo)
    result = subprocess.run([sys.executable, "-m", "convcli", "apply", str(image), "-k", "sobel", "--reduce",
                             "magnitude", "-f", fmt, "-o", str(fifo), "--force", "-q"],
                            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    thread.join(10)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    if fmt == "npy":
        assert np.load(io.BytesIO(got["data"])).shape == (40, 50, 3)
    else:
        assert Image.open(io.BytesIO(got["data"])).size == (50, 40)
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".convcli-")]


def test_other_special_files_are_refused_even_with_force(tmp_path):
    import socket

    image = tmp_path / "in.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(image)
    path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        result = subprocess.run([sys.executable, "-m", "convcli", "apply", str(image), "-k", "1", "-f", "npy",
                                 "-o", str(path), "--force"], capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=60)
    finally:
        server.close()
    assert result.returncode == 1
    assert result.stderr.strip() == f"convcli: error: {path}: is not a regular file; refusing to replace it"
    assert os.path.exists(path)
