"""The strategies of ``convcli.engines`` against independent references.

Every registered strategy (and ``auto``) is run on geometries chosen to reach
its own code paths: several row tiles (the tile sizes are shrunk so small
images need many), column strides (phase splits), low-rank and per-channel
kernels (separable), long kernels (Toeplitz GEMM passes, FFT tiles), pads
wider than the image, images smaller than the kernel. The reference is
``numpy.pad`` + ``scipy.signal.correlate2d`` + slicing (``reference.py``),
the scatter-add loop for transposed convolution, and torch when importable.
The last tests check the shared machinery: local padding against
``numpy.pad``, peak memory (tracemalloc), lazy imports and the BLAS guard.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from reference import (
    BORDERS,
    assert_matches,
    numpy_conv_transpose2d,
    scipy_conv2d,
    torch_available,
    torch_conv_transpose2d,
)

from convcli import ConvcliError, conv2d, conv_transpose2d
from convcli.borders import pad_image, parse_border
from convcli.engines import (
    FORWARD_ENGINES,
    TRANSPOSE_ENGINES,
    ForwardProblem,
    TransposeProblem,
    choose_forward,
    choose_transpose,
    direct,
    fft,
    gemm,
    polyphase,
    separable,
)
from convcli.engines._bands import Padder, release_scratch

FORWARD = [*sorted(FORWARD_ENGINES), "auto"]
TRANSPOSE = [*sorted(TRANSPOSE_ENGINES), "auto"]


@pytest.fixture
def small_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrink every tile so that a 20-row image spans many tiles."""
    monkeypatch.setattr(direct, "TILE_FLOATS", 64)
    monkeypatch.setattr(gemm, "TILE_FLOATS", 256)
    monkeypatch.setattr(separable, "TILE_FLOATS", 64)
    monkeypatch.setattr(separable, "TILE_FLOATS_SHORT", 64)
    monkeypatch.setattr(separable, "TILE_MIN_ROWS", 2)
    monkeypatch.setattr(separable, "HORIZONTAL_TILE", 4)
    monkeypatch.setattr(fft, "TILE_ROWS", 1)
    monkeypatch.setattr(polyphase, "TILE_FLOATS", 256)


def rank_bank(rng: np.random.Generator, shape: tuple[int, ...], rank: int) -> np.ndarray:
    """A (F, kh, kw) or (F, kh, kw, C) bank whose kernels have the given rank."""
    if len(shape) == 3:
        f, kh, kw = shape
        return sum(np.einsum("fi,fj->fij", rng.normal(size=(f, kh)), rng.normal(size=(f, kw)))
                   for _ in range(rank))
    f, kh, kw, c = shape
    return sum(np.einsum("fic,fjc->fijc", rng.normal(size=(f, kh, c)), rng.normal(size=(f, kw, c)))
               for _ in range(rank))


def check(image: np.ndarray, bank: np.ndarray, method: str, **kwargs) -> None:
    expected = scipy_conv2d(image, bank, **kwargs)
    assert expected is not None
    actual = conv2d(image, bank, method=method, **kwargs)
    assert_matches(actual, expected, image.dtype, f"{method} {kwargs}")


# ---------------------------------------------------------------- forward, every strategy
def random_geometries(count: int, seed: int) -> list[dict]:
    """Random problems across every parameter the core can carry."""
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        kh, kw = (int(v) for v in rng.integers(1, 8, 2))
        case = {
            "shape": (int(rng.integers(1, 21)), int(rng.integers(1, 21)), int(rng.integers(1, 4))),
            "bank": (int(rng.integers(1, 3)), kh, kw),
            "per_channel": bool(rng.random() < 0.4),
            "rank": int(rng.integers(1, 3)),
            "stride": tuple(int(v) for v in rng.integers(1, 4, 2)),
            "dilation": tuple(int(v) for v in rng.integers(1, 3, 2)),
            "padding": rng.choice(["valid", "same", "full", "explicit"]),
            "border": str(rng.choice(BORDERS)),
            "channels": str(rng.choice(["depthwise", "sum", "gray"])),
            "dtype": str(rng.choice(["float32", "float64"])),
            "seed": int(rng.integers(1 << 30)),
        }
        if case["padding"] == "explicit":
            case["padding"] = tuple(int(v) for v in rng.integers(0, 25, 4))  # often > image
        else:
            case["padding"] = str(case["padding"])
        rows = case["shape"][0] + sum(case["padding"][:2]) if isinstance(case["padding"], tuple) else 0
        cols = case["shape"][1] + sum(case["padding"][2:]) if isinstance(case["padding"], tuple) else 0
        keff = [case["dilation"][i] * (case["bank"][i + 1] - 1) + 1 for i in range(2)]
        if case["padding"] == "valid":
            rows, cols = case["shape"][:2]
        if case["padding"] in ("same", "full") or (rows >= keff[0] and cols >= keff[1]):
            cases.append(case)
    return cases


def arrays(case: dict) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(case["seed"])
    image = rng.uniform(-2, 3, case["shape"]).astype(case["dtype"])
    shape = case["bank"] + ((case["shape"][2],) if case["per_channel"] else ())
    if case["channels"] == "gray" and case["per_channel"]:
        shape = case["bank"] + (1,)
    bank = rank_bank(rng, shape, case["rank"])
    bank[np.abs(bank) < 0.2] = 0.0  # zero taps are skipped
    return image, bank


CASES = random_geometries(60, seed=5)


@pytest.mark.parametrize("method", FORWARD)
@pytest.mark.parametrize("index", range(len(CASES)))
def test_random_geometries(index: int, method: str, small_tiles: None) -> None:
    case = CASES[index]
    image, bank = arrays(case)
    check(image, bank, method, stride=case["stride"], dilation=case["dilation"],
          padding=case["padding"], border=case["border"], channels=case["channels"])


@pytest.mark.parametrize("method", FORWARD)
@pytest.mark.parametrize("border", BORDERS)
def test_image_smaller_than_kernel_full_padding(method: str, border: str) -> None:
    rng = np.random.default_rng(1)
    image = rng.normal(size=(2, 3, 2)).astype(np.float32)
    check(image, rng.normal(size=(2, 7, 6)), method, padding="full", border=border)


@pytest.mark.parametrize("method", FORWARD)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_one_pixel_image_and_one_by_one_kernel(method: str, dtype: str) -> None:
    image = np.array([[[2.5, -1.0, 4.0]]], dtype=dtype)
    check(image, np.array([[[3.0]], [[-2.0]]]), method)
    check(image, np.array([[[3.0]], [[-2.0]]]), method, channels="sum")
    check(image, np.ones((3, 3)), method, padding=4, border="reflect")


@pytest.mark.parametrize("method", FORWARD)
def test_all_zero_bank(method: str) -> None:
    image = np.random.default_rng(2).normal(size=(9, 8, 3))
    check(image, np.zeros((2, 3, 3)), method, padding="same")
    check(image, np.zeros((2, 3, 3, 3)), method, padding="same", channels="sum")


# ---------------------------------------------------------------- strategy-specific paths
@pytest.mark.parametrize("method", FORWARD)
@pytest.mark.parametrize("size", [(15, 15), (31, 9), (1, 17), (21, 2)])
@pytest.mark.parametrize("stride", [1, (2, 3)])
def test_long_kernels(method: str, size: tuple[int, int], stride, small_tiles: None) -> None:
    """Toeplitz GEMM passes, horizontal tiles and FFT tiles over a 4-tile image."""
    rng = np.random.default_rng(3)
    image = rng.uniform(0, 255, (40, 45, 3)).astype(np.float32)
    bank = rank_bank(rng, (1, *size), 1)
    check(image, bank, method, padding="same", stride=stride, border="symmetric")
    check(image, bank, method, padding="same", stride=stride, dilation=(2, 1), channels="sum")


@pytest.mark.parametrize("method", FORWARD)
@pytest.mark.parametrize("channels", ["depthwise", "sum"])
def test_low_rank_per_channel_banks(method: str, channels: str, small_tiles: None) -> None:
    rng = np.random.default_rng(4)
    image = rng.normal(size=(23, 19, 3))
    for rank in (1, 2, 3):
        bank = rank_bank(rng, (2, 11, 9, 3), rank)
        check(image, bank, method, padding="same", channels=channels, border="wrap")


@pytest.mark.parametrize("method", FORWARD)
def test_gaussian_float32_in_native_range(method: str, small_tiles: None) -> None:
    """float32 FFT / GEMM rounding stays within tolerance for 0–255 images."""
    rng = np.random.default_rng(6)
    image = rng.uniform(0, 255, (37, 50, 3)).astype(np.float32)
    x = np.arange(15) - 7
    gauss = np.exp(-(x**2) / 18.0)
    check(image, np.outer(gauss, gauss) / gauss.sum() ** 2, method, padding="same",
          border="reflect")


def test_separable_factorization_reconstructs_kernels() -> None:
    rng = np.random.default_rng(7)
    bank = rank_bank(rng, (3, 6, 5, 2), 2).astype(np.float64)
    for f, components in enumerate(separable.factorize(bank)):
        assert len(components) == 2
        rebuilt = sum(np.einsum("ic,jc->ijc", u, v) for u, v in components)
        np.testing.assert_allclose(rebuilt, bank[f], atol=1e-12)


# ---------------------------------------------------------------- auto
def problem(shape, bank_shape, mode="depthwise", rng=None, rank=None) -> ForwardProblem:
    rng = rng or np.random.default_rng(0)
    weights = rng.normal(size=bank_shape).astype(np.float32)
    if rank == 1:
        weights = rank_bank(rng, bank_shape, 1).astype(np.float32)
    if len(bank_shape) == 3:
        weights = np.repeat(weights[..., None], shape[2], axis=3)
    kh, kw = weights.shape[1:3]
    return ForwardProblem(
        image=np.zeros(shape, np.float32), weights=weights, mode=mode,
        pads=(kh // 2, kh - 1 - kh // 2, kw // 2, kw - 1 - kw // 2),
        border=parse_border("zero"), stride=(1, 1), dilation=(1, 1), out_shape=shape[:2],
    )


def test_auto_picks_registered_strategies_and_the_measured_winners() -> None:
    image = (2160, 3840, 3)
    native = "native" in FORWARD_ENGINES  # the compiled kernels win where they are built
    assert choose_forward(problem(image, (1, 3, 3))) == ("native" if native else "direct")  # W1-like
    assert choose_forward(problem(image, (1, 31, 31), rank=1)) == (  # W5
        "native-separable" if native else "separable")
    assert choose_forward(problem(image, (1, 31, 31))) == "fft"  # W6
    assert choose_forward(problem(image, (8, 3, 3, 3), mode="sum")) == ("native" if native else "gemm")  # W2
    assert choose_forward(problem(image, (8, 11, 11, 3), mode="sum")) == "fft"
    assert choose_forward(problem((3, 3, 1), (1, 3, 3))) == "direct"  # tiny
    for bank in [(1, 1, 1), (4, 5, 5), (2, 1, 9), (64, 3, 3, 3)]:
        mode = "sum" if len(bank) == 4 else "depthwise"
        assert choose_forward(problem((50, 60, 3), bank, mode=mode)) in FORWARD_ENGINES


def transposed_problem(image_shape: tuple[int, int, int], bank_shape: tuple[int, ...], stride: int = 2,
                       mode: str = "sum") -> TransposeProblem:
    rows, cols, channels = image_shape
    n_filters, kh, kw = bank_shape[:3]
    out_shape = ((rows - 1) * stride - 2 + kh, (cols - 1) * stride - 2 + kw)
    weights = np.random.default_rng(0).standard_normal((n_filters, kh, kw, channels)).astype(np.float32)
    return TransposeProblem(image=np.zeros(image_shape, np.float32), weights=weights, mode=mode,
                            crop=(1, 1), stride=(stride, stride), dilation=(1, 1), out_shape=out_shape)


def test_auto_picks_the_compiled_polyphase_for_image_channels_and_the_gemm_for_deep_banks() -> None:
    """Measured (see choose_transpose): W7 (3 → 3) native-polyphase 25 ms vs 42; 64 → 32: 170 vs 85."""
    native = "native-polyphase" in TRANSPOSE_ENGINES
    assert choose_transpose(transposed_problem((1080, 1920, 3), (3, 4, 4, 3))) == (
        "native-polyphase" if native else "polyphase")  # W7
    assert choose_transpose(transposed_problem((512, 512, 3), (1, 4, 4), mode="depthwise")) == (
        "native-polyphase" if native else "polyphase")
    assert choose_transpose(transposed_problem((256, 256, 64), (32, 4, 4, 64))) == "polyphase"
    assert choose_transpose(transposed_problem((128, 128, 128), (64, 2, 2, 128))) == "polyphase"


# ---------------------------------------------------------------- transposed
def transpose_cases(count: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(count):
        stride = tuple(int(v) for v in rng.integers(1, 4, 2))
        dilation = tuple(int(v) for v in rng.integers(1, 3, 2))
        cases.append({
            "shape": tuple(int(v) for v in (*rng.integers(1, 9, 2), rng.integers(1, 4))),
            "bank": tuple(int(v) for v in (rng.integers(1, 3), *rng.integers(1, 6, 2))),
            "stride": stride,
            "dilation": dilation,
            "padding": tuple(int(v) for v in rng.integers(0, 3, 4)),
            "output_padding": tuple(int(rng.integers(0, max(stride[i], dilation[i])))
                                    for i in range(2)),
            "channels": str(rng.choice(["depthwise", "sum"])),
            "dtype": str(rng.choice(["float32", "float64"])),
            "seed": int(rng.integers(1 << 30)),
        })
    return cases


TRANSPOSE_CASES = transpose_cases(40, seed=8)


@pytest.mark.parametrize("method", TRANSPOSE)
@pytest.mark.parametrize("index", range(len(TRANSPOSE_CASES)))
def test_transposed_against_scatter_loop(index: int, method: str, small_tiles: None) -> None:
    case = TRANSPOSE_CASES[index]
    rng = np.random.default_rng(case["seed"])
    image = rng.normal(size=case["shape"]).astype(case["dtype"])
    bank = rng.normal(size=case["bank"])
    kwargs = {k: case[k] for k in ("stride", "dilation", "padding", "output_padding", "channels")}
    expected = numpy_conv_transpose2d(image, bank, **kwargs)
    if expected is None:
        pytest.skip("no output for this geometry")
    actual = conv_transpose2d(image, bank, method=method, **kwargs)
    assert_matches(actual, expected, case["dtype"], str(case))
    scatter = conv_transpose2d(image, bank, method="scatter", **kwargs)
    assert_matches(actual, scatter.astype(np.float64), case["dtype"], "vs scatter")


@pytest.mark.skipif(not torch_available(), reason="torch not installed")
@pytest.mark.parametrize("method", TRANSPOSE)
def test_transposed_w7_geometry_against_torch(method: str) -> None:
    rng = np.random.default_rng(9)
    image = rng.uniform(0, 255, (30, 41, 3)).astype(np.float32)
    bank = rng.normal(size=(3, 4, 4, 3))
    kwargs = {"stride": 2, "padding": 1, "channels": "sum"}
    expected = torch_conv_transpose2d(image, bank, **kwargs)
    assert_matches(conv_transpose2d(image, bank, method=method, **kwargs), expected, "float32")


# ---------------------------------------------------------------- shared machinery
@pytest.mark.parametrize("border", BORDERS)
def test_local_padding_equals_numpy_pad(border: str) -> None:
    rng = np.random.default_rng(10)
    parsed = parse_border(border)
    for shape, pads in [((5, 4, 2), (7, 2, 9, 1)), ((1, 1, 3), (3, 4, 2, 5)), ((6, 8, 1), (0, 0, 0, 0))]:
        image = rng.normal(size=shape)
        whole = pad_image(image, pads, parsed)
        padder = Padder(image, pads, parsed)
        for start, stop in [(0, whole.shape[0]), (1, 3), (whole.shape[0] - 1, whole.shape[0])]:
            band = padder.band(start, stop, "test-band", width=whole.shape[1] + 2)
            np.testing.assert_array_equal(band[:, : whole.shape[1]], whole[start:stop])
            np.testing.assert_array_equal(band[:, whole.shape[1] :], 0.0)


@pytest.mark.parametrize(
    ("method", "channels", "bank_shape"),
    [
        ("gemm", "sum", (8, 3, 3, 3)),  # W2
        ("direct", "depthwise", (1, 3, 3)),
        ("separable", "depthwise", (1, 15, 15)),
        ("fft", "depthwise", (1, 31, 31)),
        ("fft", "sum", (2, 11, 11, 3)),
        *[(name, channels, bank) for name in ("native", "native-separable") if name in FORWARD_ENGINES
          for channels, bank in (("sum", (8, 3, 3, 3)), ("depthwise", (1, 15, 15)))],
    ],
)
def test_peak_memory_is_bounded(method: str, channels: str, bank_shape: tuple) -> None:
    """Peak ≤ 1.3 × (input + output) bytes: no padded copy, no k·k-times im2col."""
    rng = np.random.default_rng(11)
    image = rng.uniform(0, 255, (1024, 1536, 3)).astype(np.float32)
    bank = rng.normal(size=bank_shape)
    conv2d(image, bank, padding="same", channels=channels, method=method)  # warm the pool
    release_scratch()
    tracemalloc.start()
    try:
        out = conv2d(image, bank, padding="same", channels=channels, method=method)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    limit = 1.3 * (image.nbytes + out.nbytes)
    assert peak <= limit, f"{method}: peak {peak / 1e6:.1f} MB > {limit / 1e6:.1f} MB"


def test_import_convcli_does_not_import_scipy() -> None:
    code = (
        "import sys, numpy as np, convcli;"
        "convcli.conv2d(np.ones((40, 40, 3)), np.ones((3, 3)), method='auto');"
        "convcli.conv2d(np.ones((40, 40, 3)), np.ones((8, 3, 3, 3)), channels='sum');"
        "convcli.conv_transpose2d(np.ones((9, 9, 3)), np.ones((4, 4)), stride=2);"
        "bad = [m for m in sys.modules if m.startswith('scipy')];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_blas_guard_restores_the_thread_count() -> None:
    from threadpoolctl import threadpool_info

    from convcli.engines import _blas

    def counts() -> list[int]:
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    before = counts()
    if not before:
        pytest.skip("threadpoolctl finds no BLAS in this process")
    with _blas.single_threaded_blas():
        assert counts() == [1] * len(before)
        with _blas.single_threaded_blas():
            assert counts() == [1] * len(before)
        assert counts() == [1] * len(before)
    assert counts() == before


@pytest.mark.parametrize("first", ["scipy.linalg", "cv2"])
def test_blas_guard_holds_numpys_openblas_even_when_another_was_loaded_first(first) -> None:
    """scipy's and OpenCV's wheels carry their own OpenBLAS; loaded first, one used to be the only one held.

    numpy's OpenBLAS is read through ctypes (not threadpoolctl, which the guard uses).
    """
    pytest.importorskip(first)
    code = (
        f"import {first}\n"
        "import numpy as np, ctypes, glob, os\n"
        "root = os.path.dirname(os.path.dirname(np.__file__))\n"
        "libs = glob.glob(os.path.join(root, 'numpy.libs', '*openblas*'))\n"
        "if not libs: raise SystemExit(0)\n"
        "lib = ctypes.CDLL(libs[0])\n"
        "get = next(getattr(lib, n) for n in ('scipy_openblas_get_num_threads64_',"
        " 'openblas_get_num_threads64_', 'openblas_get_num_threads') if hasattr(lib, n))\n"
        "from convcli.engines._blas import blas_libraries, single_threaded_blas\n"
        "assert get() == 2, get()\n"
        "with single_threaded_blas():\n"
        "    assert get() == 1, get()\n"
        "    assert all(lib['num_threads'] == 1 for lib in blas_libraries()), blas_libraries()\n"
        "assert get() == 2, get()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "OPENBLAS_NUM_THREADS": "2"})


def test_blas_guard_sees_a_blas_loaded_after_its_first_use() -> None:
    code = (
        "import numpy as np\n"
        "from convcli.engines._blas import blas_libraries, single_threaded_blas\n"
        "with single_threaded_blas():\n"
        "    pass\n"
        "n = len(blas_libraries())\n"
        "import scipy.linalg\n"
        "with single_threaded_blas():\n"
        "    libs = blas_libraries()\n"
        "    assert all(lib['num_threads'] == 1 for lib in libs), libs\n"
        "assert len(libs) >= n, (n, libs)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "OPENBLAS_NUM_THREADS": "2"})


@pytest.mark.parametrize(("kernel", "column", "row"), [
    ([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], [1, 2, 1], [-1, 0, 1]),
    ([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], [1, 0, -1], [-1, -2, -1]),
    ([[3, 0, -3], [10, 0, -10], [3, 0, -3]], [3, 10, 3], [1, 0, -1]),
])
def test_separable_factors_of_integer_kernels_are_integers(kernel, column, row):
    weights = np.asarray(kernel, dtype=np.float32)[None, :, :, None]
    ((u, v),) = separable.factorize(weights)[0]
    np.testing.assert_array_equal(u[:, 0], column)
    np.testing.assert_array_equal(v[:, 0], row)


def test_separable_factors_of_a_gaussian_reproduce_it():
    g = np.exp(-((np.arange(7) - 3.0) ** 2) / 4)
    weights = (np.outer(g, g) / np.outer(g, g).sum()).astype(np.float64)[None, :, :, None]
    ((u, v),) = separable.factorize(weights)[0]
    np.testing.assert_allclose(np.outer(u[:, 0], v[:, 0]), weights[0, :, :, 0], rtol=1e-12, atol=0)


@pytest.mark.parametrize("weights", [(1, 1, 2), (1, -1), (-1, 1), (-1, -1, 3), (2, -3), (1,), (-1,),
                                     (1, 1, -1, -1, 2, -2)])
@pytest.mark.parametrize("first", [True, False])
def test_accumulate_equals_the_weighted_sum(weights, first):
    from convcli.engines._bands import accumulate

    rng = np.random.default_rng(len(weights))
    windows = [rng.standard_normal((3, 7)) for _ in weights]
    start = rng.standard_normal((3, 7))
    acc = start.copy()
    assert accumulate(acc, list(zip(windows, weights)), np.empty((3, 7)), first)
    expected = sum(w * x for w, x in zip(weights, windows)) + (0 if first else start)
    np.testing.assert_allclose(acc, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", ["auto", *sorted(FORWARD_ENGINES)])
@pytest.mark.parametrize("pixel_type", [np.uint8, np.uint16])
@pytest.mark.parametrize(("bank", "options"), [
    (np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]), {"padding": "same", "border": "constant:-3"}),
    (np.ones((2, 5, 5, 3)) / 25, {"padding": 2, "channels": "sum", "border": "reflect", "stride": 2}),
    (np.random.default_rng(3).standard_normal((3, 3, 3)), {"padding": "full", "border": "wrap",
                                                             "dilation": 2}),
    (np.random.default_rng(4).standard_normal((4, 3, 3, 3)), {"padding": "same", "channels": "sum",
                                                                "stride": (1, 2)}),
    (np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0, {"padding": "same", "border": "symmetric"}),
])
def test_integer_pixels_give_the_float_result(method, pixel_type, bank, options):
    """8/16-bit pixels go to the band strategies unconverted; the result is the float one, exactly."""
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, np.iinfo(pixel_type).max, size=(13, 17, 3), endpoint=True).astype(pixel_type)
    floats = pixels.astype(np.float32)
    try:
        expected = conv2d(floats, bank, method=method, **options)
    except ConvcliError:
        pytest.skip(f"{method} does not take this problem")
    result = conv2d(pixels, bank, method=method, **options)
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, expected)
    assert_matches(result, scipy_conv2d(floats.astype(np.float64), bank, **options), np.float32)
