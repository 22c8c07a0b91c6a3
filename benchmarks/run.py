"""Time convcli against its peers on the workloads W1–W8 of BENCH.md.

For each workload W1–W7 (a 3840×2160 RGB float32 image, zero border,
``same`` output; W7 is a transposed convolution of the half-size image) the
script times convcli's ``auto`` and every strategy that applies, and the
peers that are importable: ``scipy.signal.correlate2d`` and
``scipy.ndimage.correlate`` (loops over channels and kernels), two
``ndimage.correlate1d`` passes for rank-1 kernels, OpenCV (``filter2D``,
``sepFilter2D``; 2 threads) and PyTorch (``conv2d`` / ``conv_transpose2d``
on channels-last NCHW tensors; 2 threads). Every output is compared with
convcli's ``auto`` before it is timed; a mismatch is reported loudly and
makes the exit status 1 (a benchmark of different computations is
worthless), as does a failing ``convcli`` command.

W8 times whole processes, 4K PNG → Sobel-x → 8-bit PNG: ``convcli apply``
against the ``vips`` CLI and ImageMagick's ``convert`` at zlib level 6, at
level 1 and at each tool's default settings. Start-up compares
``convcli shape 224 -k 3`` with ``python -c pass``.

Timing: medians of ``--repeat`` runs, interleaved (one run of every
contender per round, in a new seeded random order each round), after one
warm-up run that also checks the output; everything in one process,
except W8 and start-up (wall time of a subprocess). The printed report
(also written to ``--output``) has the medians, the ratios
``convcli auto ÷ peer`` and, for every target of the issue, whether it is
met. The machine is shared and noisy: compare ratios within one report,
never absolute times across reports (the report records the load average).

Choices, measured on the project machine (2 cores) while writing this:

* ``scipy.signal.correlate2d`` and ``scipy.ndimage.correlate`` take 8–43 s
  per 4K call, so they run on the top-left crop of a quarter of the rows and
  columns (540×960, 1/16 of the pixels) and their time is multiplied by the
  pixel ratio (their cost is linear in pixels); they are checked against
  convcli on the same crop.
* Not timed (see :data:`SKIPPED`): the ``reference`` engine for kernels of
  15×15 and more (10 s for W4), ``gemm`` for 31×31 (25–27 s: an im2col of
  961 taps), and torch's depthwise (``groups=3``) 15×15 / 31×31
  convolutions (30 s / 89 s per call: torch 2.13 has no fast CPU path for
  them).
* This script found a convcli bug: with scipy's or OpenCV's OpenBLAS
  loaded first, convcli held that copy to one thread instead of numpy's,
  and ``gemm`` / ``separable`` ran 15–25× slower. Fixed in
  ``convcli/engines/_blas.py`` (every OpenBLAS is held, numpy's first); the
  peers are now imported before convcli's first call on purpose, so a
  regression shows here.
* W8's input is ``sample_images/astronaut.png`` upscaled with Lanczos to
  cover 3840×2160 (centre crop) plus Gaussian noise (σ = 3 grey levels,
  seeded), so that PNG coding works on photo-like content. convcli runs
  with ``--scale clip``, which writes what ``vips conv`` writes (the
  correlation clipped to 0–255); ImageMagick flips the kernel (true
  convolution): the same work, mirrored result.

W2u/W3u are W2/W3 with a uniform bank (each kernel the same on every
channel, as ``-k sobel --channels sum`` or PyTorch weights repeated over C):
convcli adds the channels once, then convolves one plane. The reduce steps
(``--reduce max`` / ``magnitude`` of a 12 MP stack of 2 kernels × 3
channels, :func:`convcli.maps.reduce_maps`) are timed against the numpy
expressions they replaced and ``np.hypot`` of the two contiguous planes.

Usage::

    python benchmarks/run.py            # full run (6–8 min), writes benchmarks/RESULTS.md
    python benchmarks/run.py --quick --only W2u,W3u,reduce   # some rows only, prints only
    python benchmarks/run.py --quick    # 270×480, 3 runs, ~15 s, prints only
    python benchmarks/run.py --repeat 7 --output /tmp/results.md
"""

from __future__ import annotations

import argparse
import datetime
import functools
import importlib
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import scipy
from PIL import Image

import convcli
from convcli import conv2d, conv_transpose2d, engines, resolve_padding2d
from convcli.errors import ConvcliError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = ROOT / "benchmarks" / "RESULTS.md"
SAMPLE_PHOTO = ROOT / "sample_images" / "astronaut.png"

FULL_SIZE = (2160, 3840)
QUICK_SIZE = (270, 480)
FULL_REPEAT = 5
QUICK_REPEAT = 3
THREADS = 2

#: Largest relative difference ``max |out − convcli| / max |convcli|`` accepted
#: (float32; the FFT paths of convcli and OpenCV stay near 1e-6).
TOLERANCE = 1e-4

SOBEL_COLUMN = np.array([1.0, 2.0, 1.0])
SOBEL_ROW = np.array([-1.0, 0.0, 1.0])
SOBEL_X = np.outer(SOBEL_COLUMN, SOBEL_ROW)
SOBEL_X_SPEC = "3x3: -1,0,1,-2,0,2,-1,0,1"
W7_PADDING = 1

STRATEGIES = (*sorted(engines.FORWARD_ENGINES), *sorted(engines.TRANSPOSE_ENGINES))
CROPPED_PEERS = ("signal.correlate2d", "ndimage.correlate")
PEERS = (*CROPPED_PEERS, "ndimage 1-D", "cv2.filter2D", "cv2.sepFilter2D", "torch")

#: (workload, column) → why it is not timed: one call each, full 4K image.
SKIPPED = {
    ("W4", "reference"): "10 s per call (225 whole-image taps)",
    ("W5", "reference"): "≈ 45 s per call (estimated: 961 taps at W4's cost per tap)",
    ("W6", "reference"): "≈ 45 s per call (estimated: 961 taps at W4's cost per tap)",
    ("W5", "gemm"): "25 s per call (im2col of 961 taps)",
    ("W6", "gemm"): "27 s per call (im2col of 961 taps)",
    ("W4", "torch"): "30 s per call (depthwise groups=3, 15×15: no fast CPU path in torch)",
    ("W5", "torch"): "89 s per call (depthwise groups=3, 31×31)",
    ("W6", "torch"): "89 s per call (depthwise groups=3, 31×31)",
}

NOT_APPLICABLE = "–"
SKIP = "skip"
FAILED = "failed"


# --------------------------------------------------------------------------- workloads


@dataclass(frozen=True, eq=False)
class Workload:
    """One convolution problem of BENCH.md (a row of the kernel table).

    Attributes
    ----------
    key : str
        ``W1`` … ``W7``.
    title : str
        What the row computes, for the table.
    bank : ndarray, shape (kh, kw) or (F, kh, kw, C)
        convcli's correlation weights.
    channels : {'depthwise', 'sum'}
    stride : int
    transposed : bool
        A ``conv_transpose2d`` with padding :data:`W7_PADDING` (the input is
        the half-size image), else a ``conv2d`` with ``padding='same'``.
    factors : (column, row) or None
        1-D factors of a rank-1 2-D kernel, ``bank = outer(column, row)``.
    """

    key: str
    title: str
    bank: np.ndarray
    channels: str
    stride: int = 1
    transposed: bool = False
    factors: tuple[np.ndarray, np.ndarray] | None = None

    def input_shape(self, size: tuple[int, int]) -> tuple[int, int]:
        """(H, W) of this workload's input for a benchmark image of ``size``."""
        rows, cols = size
        return (rows // self.stride, cols // self.stride) if self.transposed else (rows, cols)

    def convcli(self, image: np.ndarray, method: str = "auto") -> np.ndarray:
        """The workload computed by convcli with ``method``."""
        if self.transposed:
            return conv_transpose2d(image, self.bank, stride=self.stride, padding=W7_PADDING,
                                    channels=self.channels, method=method)
        return conv2d(image, self.bank, stride=self.stride, padding="same",
                      channels=self.channels, method=method)


def gaussian_1d(size: int, sigma: float) -> np.ndarray:
    """A normalised 1-D Gaussian of ``size`` taps, centred."""
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def workloads(rng: np.random.Generator) -> list[Workload]:
    """W1–W7 of BENCH.md, with seeded random weights."""
    bank8 = rng.standard_normal((8, 3, 3, 3))
    g15, g31 = gaussian_1d(15, 3.0), gaussian_1d(31, 5.0)
    uniform8 = np.repeat(rng.standard_normal((8, 3, 3, 1)), 3, axis=3)
    return [
        Workload("W1", "Sobel-x 3×3, each channel", SOBEL_X, "depthwise",
                 factors=(SOBEL_COLUMN, SOBEL_ROW)),
        Workload("W2", "8 random 3×3, 3 → 8 (sum)", bank8, "sum"),
        Workload("W3", "W2 at stride 2", bank8, "sum", stride=2),
        Workload("W4", "Gaussian 15×15 σ 3, each channel", np.outer(g15, g15), "depthwise",
                 factors=(g15, g15)),
        Workload("W5", "Gaussian 31×31 σ 5, each channel", np.outer(g31, g31), "depthwise",
                 factors=(g31, g31)),
        Workload("W6", "random 31×31, each channel", rng.standard_normal((31, 31)), "depthwise"),
        Workload("W7", "transposed 4×4, s 2, pad 1, 3 → 3 (sum)", rng.standard_normal((3, 4, 4, 3)),
                 "sum", stride=2, transposed=True),
        Workload("W2u", "8 random 3×3, uniform over channels, 3 → 8 (sum)", uniform8, "sum"),
        Workload("W3u", "W2u at stride 2", uniform8, "sum", stride=2),
    ]


#: The reduce steps' stack: 12 MP, 2 kernels × 3 channels (quick runs: the quick size).
REDUCE_SIZE = (3000, 4000)


def bench_reduce(size: tuple[int, int], repeat: int) -> dict[str, dict[str, float]]:
    """ms of ``reduce_maps`` (max, magnitude) and the numpy expressions they replaced, interleaved."""
    from convcli.maps import reduce_maps

    rng = np.random.default_rng(1)
    maps = rng.standard_normal((*size, 6), dtype=np.float32)
    stacked = maps.reshape(*size, 2, 3)
    planes = [np.ascontiguousarray(stacked[:, :, f]) for f in range(2)]
    calls = {
        "max": {"convcli": lambda: reduce_maps(maps, 2, "max"), "numpy": lambda: stacked.max(axis=2)},
        "magnitude": {
            "convcli": lambda: reduce_maps(maps, 2, "magnitude"),
            "numpy": lambda: np.sqrt(np.einsum("ijfc,ijfc->ijc", stacked, stacked)),
            "np.hypot (planes)": lambda: np.hypot(planes[0], planes[1]),
        },
    }
    results = {}
    for name, contenders in calls.items():
        expected = contenders["numpy"]()
        for contender, call in contenders.items():
            error = relative_error(call(), expected)
            if not error <= TOLERANCE:
                progress(f"!!! MISMATCH reduce {name} {contender}: relative error {error:.3g}")
        progress(f"reduce {name}: {repeat} interleaved rounds")
        medians = interleaved_medians({c: stopwatch(call) for c, call in contenders.items()}, repeat)
        results[name] = {c: t * 1e3 for c, t in medians.items()}
    return results


def reduce_table(results: dict[str, dict[str, float]], size: tuple[int, int]) -> str:
    """One row per reduction: convcli, the numpy expression, np.hypot where it applies."""
    columns = ["convcli", "numpy", "np.hypot (planes)"]
    body = [[f"--reduce {name}, {size[1]}×{size[0]}×(2×3) float32",
             *(fmt_ms(times[c]) if c in times else NOT_APPLICABLE for c in columns)]
            for name, times in results.items()]
    return markdown_table(["reduce step", *(f"{c} ms" for c in columns)], body)


def crop_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """A quarter of the rows and columns, rounded down to even (stride-2 phases stay put)."""
    return max(2, shape[0] // 8 * 2), max(2, shape[1] // 8 * 2)


# --------------------------------------------------------------------------- peers


def float32_weights(workload: Workload) -> np.ndarray:
    """The bank as float32 ``(F, kh, kw, C)`` (2-D kernels broadcast over 3 channels)."""
    bank = np.asarray(workload.bank, dtype=np.float32)
    if bank.ndim == 2:
        bank = np.broadcast_to(bank[None, :, :, None], (1, *bank.shape, 3))
    return np.ascontiguousarray(bank)


def take_strided(same: np.ndarray, workload: Workload, in_shape: tuple[int, int]) -> np.ndarray:
    """Rows and columns of a stride-1 centred ``same`` result that TF-SAME at the stride reads."""
    s = workload.stride
    if s == 1:
        return same
    kh, kw = workload.bank.shape[-3:-1] if workload.bank.ndim == 4 else workload.bank.shape
    top, _, left, _ = resolve_padding2d(in_shape, (kh, kw), stride=s, padding="same")
    rows, cols = -(-in_shape[0] // s), -(-in_shape[1] // s)
    r0, c0 = kh // 2 - top, kw // 2 - left
    return same[r0 : r0 + s * rows : s, c0 : c0 + s * cols : s]


def zero_insert(plane: np.ndarray, stride: int) -> np.ndarray:
    """``(H, W)`` → ``((H−1)·s + 1, (W−1)·s + 1)`` with the pixels ``s`` apart, zeros between."""
    rows, cols = plane.shape
    up = np.zeros(((rows - 1) * stride + 1, (cols - 1) * stride + 1), dtype=plane.dtype)
    up[::stride, ::stride] = plane
    return up


PlaneFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def full_by_padding(same: PlaneFn, plane: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``full`` correlation from a centred ``same`` one: pad by ``k − 1``, correlate, keep the span."""
    kh, kw = kernel.shape
    out = same(np.pad(plane, ((kh - 1, kh - 1), (kw - 1, kw - 1))), kernel)
    return out[kh // 2 : kh // 2 + plane.shape[0] + kh - 1, kw // 2 : kw // 2 + plane.shape[1] + kw - 1]


def plane_loop(image: np.ndarray, workload: Workload, same: PlaneFn, full: PlaneFn) -> np.ndarray:
    """A workload as a loop of single-plane 2-D correlations (the scipy way).

    Depthwise: one correlation per channel. Sum: for each kernel, the sum
    over channels. Stride: the stride-1 result, subsampled. Transposed: the
    ``full`` correlation of the zero-inserted planes with the flipped
    kernels, cropped by the padding.
    """
    weights = float32_weights(workload)
    planes = [np.ascontiguousarray(image[:, :, c]) for c in range(image.shape[2])]
    if workload.transposed:
        planes = [zero_insert(p, workload.stride) for p in planes]
        weights = np.ascontiguousarray(weights[:, ::-1, ::-1])
        correlate = full
    else:
        correlate = same
    if workload.channels == "depthwise":
        maps = [correlate(p, weights[0, :, :, c]) for c, p in enumerate(planes)]
    else:
        maps = [sum(correlate(p, weights[f, :, :, c]) for c, p in enumerate(planes))
                for f in range(weights.shape[0])]
    out = np.stack(maps, axis=-1)
    if workload.transposed:
        rows = (image.shape[0] - 1) * workload.stride - 2 * W7_PADDING + weights.shape[1]
        cols = (image.shape[1] - 1) * workload.stride - 2 * W7_PADDING + weights.shape[2]
        return out[W7_PADDING : W7_PADDING + rows, W7_PADDING : W7_PADDING + cols]
    return take_strided(out, workload, image.shape[:2])


def ndimage_separable(ndimage: ModuleType, image: np.ndarray, workload: Workload) -> np.ndarray:
    """Two ``ndimage.correlate1d`` passes on the (H, W, C) image (what ``gaussian_filter`` does)."""
    column, row = workload.factors
    vertical = ndimage.correlate1d(image, column, axis=0, mode="constant")
    return ndimage.correlate1d(vertical, row, axis=1, mode="constant")


def opencv_filter2d(cv2: ModuleType, image: np.ndarray, workload: Workload) -> np.ndarray:
    """``cv2.filter2D`` on the (H, W, C) image, or a loop over kernels and channels for a sum bank."""
    weights = float32_weights(workload)
    if workload.channels == "depthwise":
        same = cv2.filter2D(image, -1, weights[0, :, :, 0], borderType=cv2.BORDER_CONSTANT)
    else:
        planes = cv2.split(image)
        maps = []
        for f in range(weights.shape[0]):
            acc = cv2.filter2D(planes[0], -1, weights[f, :, :, 0], borderType=cv2.BORDER_CONSTANT)
            for c in range(1, len(planes)):
                acc += cv2.filter2D(planes[c], -1, weights[f, :, :, c], borderType=cv2.BORDER_CONSTANT)
            maps.append(acc)
        same = np.stack(maps, axis=-1)
    return take_strided(same, workload, image.shape[:2])


def opencv_separable(cv2: ModuleType, image: np.ndarray, workload: Workload) -> np.ndarray:
    """``cv2.sepFilter2D`` with the workload's 1-D factors."""
    column, row = (f.astype(np.float32) for f in workload.factors)
    return cv2.sepFilter2D(image, -1, row, column, borderType=cv2.BORDER_CONSTANT)


@dataclass
class Contender:
    """One timed column of a workload row.

    Attributes
    ----------
    column : str
        Table column.
    run : callable
        The timed call.
    to_hwc : callable
        Turns ``run()``'s result into convcli's ``(H', W', N)`` layout (not timed).
    check : callable or None
        An untimed call whose (converted) result is compared instead of
        ``run()``'s, when the timed call is not the same computation (torch
        at stride 2 pads symmetrically; TF-SAME pads 0 top, 1 bottom).
    on_crop : bool
        Runs on the crop; ``scale`` (the pixel ratio) multiplies its time.
    """

    column: str
    run: Callable[[], Any]
    to_hwc: Callable[[Any], np.ndarray] = np.asarray
    check: Callable[[], Any] | None = None
    on_crop: bool = False
    scale: float = 1.0


def torch_contender(torch: ModuleType, image: np.ndarray, workload: Workload) -> Contender:
    """``torch.nn.functional.conv2d`` / ``conv_transpose2d`` on channels-last tensors."""
    functional = torch.nn.functional
    x = torch.from_numpy(image).permute(2, 0, 1)[None]  # NCHW view of HWC data: channels-last
    weights = float32_weights(workload)
    kh, kw = weights.shape[1:3]

    def to_hwc(result: Any) -> np.ndarray:
        return result[0].permute(1, 2, 0).numpy()

    if workload.transposed:  # weight[c, f, m, n] = bank[f, m, n, c]
        w = torch.from_numpy(weights.transpose(3, 0, 1, 2).copy()).contiguous(
            memory_format=torch.channels_last)
        return Contender("torch", functools.partial(
            functional.conv_transpose2d, x, w, stride=workload.stride, padding=W7_PADDING), to_hwc)
    if workload.channels == "depthwise":  # weight[c, 0, m, n], groups=C
        w, groups = torch.from_numpy(weights[0].transpose(2, 0, 1)[:, None].copy()), image.shape[2]
    else:  # weight[f, c, m, n]
        w, groups = torch.from_numpy(weights.transpose(0, 3, 1, 2).copy()), 1
    w = w.contiguous(memory_format=torch.channels_last)
    run = functools.partial(functional.conv2d, x, w, stride=workload.stride,
                            padding=(kh // 2, kw // 2), groups=groups)
    top, bottom, left, right = resolve_padding2d(image.shape[:2], (kh, kw), stride=workload.stride,
                                                 padding="same")
    check: Callable[[], Any] | None = None
    if (top, left) != (kh // 2, kw // 2):  # explicit TF-SAME pads for the comparison
        def check() -> Any:
            padded = functional.pad(x, (left, right, top, bottom))
            return functional.conv2d(padded, w, stride=workload.stride, groups=groups)

    return Contender("torch", run, to_hwc, check)


def peer_contenders(workload: Workload, image: np.ndarray, crop: np.ndarray,
                    modules: dict[str, ModuleType | None]) -> list[Contender]:
    """The peers that apply to ``workload`` and are importable (skipped ones left out)."""
    scale = image.shape[0] * image.shape[1] / (crop.shape[0] * crop.shape[1])
    signal, ndimage = modules["scipy.signal"], modules["scipy.ndimage"]
    signal_same = functools.partial(signal.correlate2d, mode="same")
    signal_full = functools.partial(signal.correlate2d, mode="full")
    ndimage_same = functools.partial(ndimage.correlate, mode="constant")
    ndimage_full = functools.partial(full_by_padding, ndimage_same)
    peers = [
        Contender("signal.correlate2d", functools.partial(
            plane_loop, crop, workload, signal_same, signal_full), on_crop=True, scale=scale),
        Contender("ndimage.correlate", functools.partial(
            plane_loop, crop, workload, ndimage_same, ndimage_full), on_crop=True, scale=scale),
    ]
    if workload.factors is not None:
        peers.append(Contender("ndimage 1-D",
                               functools.partial(ndimage_separable, ndimage, image, workload)))
    cv2 = modules["cv2"]
    if cv2 is not None and not workload.transposed:
        peers.append(Contender("cv2.filter2D", functools.partial(opencv_filter2d, cv2, image, workload)))
        if workload.factors is not None:
            peers.append(Contender("cv2.sepFilter2D",
                                   functools.partial(opencv_separable, cv2, image, workload)))
    torch = modules["torch"]
    if torch is not None and (workload.key, "torch") not in SKIPPED:
        peers.append(torch_contender(torch, image, workload))
    return peers


def convcli_contenders(workload: Workload, image: np.ndarray) -> list[Contender]:
    """convcli ``auto`` and every strategy not in :data:`SKIPPED`."""
    methods = ["auto", *(s for s in STRATEGIES if (workload.key, s) not in SKIPPED)]
    return [Contender(m, functools.partial(workload.convcli, image, m)) for m in methods]


# --------------------------------------------------------------------------- timing


def stopwatch(call: Callable[[], Any]) -> Callable[[], float]:
    """A measure: runs ``call`` and returns its wall time in seconds."""

    def measure() -> float:
        start = time.perf_counter()
        call()
        return time.perf_counter() - start

    return measure


def interleaved_medians(measures: dict[str, Callable[[], float]], repeat: int) -> dict[str, float]:
    """Median of ``repeat`` samples of each measure, one sample of each per round.

    Each round runs the measures in a new (seeded) random order, so that no
    measure always follows the same one: the threads of a peer still spinning
    after its call (OpenMP's spin-wait) or a cache another call just filled
    would otherwise bias one contender (a rotation of 5 rounds over 14
    contenders put convcli ``auto`` right after the peers in every round).
    """
    samples: dict[str, list[float]] = {name: [] for name in measures}
    names = list(measures)
    shuffler = random.Random(len(names))
    for _ in range(repeat):
        order = names[:]
        shuffler.shuffle(order)
        for name in order:
            samples[name].append(measures[name]())
    return {name: statistics.median(values) for name, values in samples.items()}


def relative_error(out: np.ndarray, expected: np.ndarray) -> float:
    """``max |out − expected| / max |expected|`` (inf when the shapes differ)."""
    if out.shape != expected.shape:
        return float("inf")
    scale = max(float(np.abs(expected).max()), np.finfo(np.float32).tiny)
    return float(np.abs(out.astype(np.float64) - expected).max()) / scale


_START = time.perf_counter()


def progress(message: str) -> None:
    """A progress line on stderr, with the seconds since start (stdout holds only the report)."""
    print(f"[{time.perf_counter() - _START:6.1f} s] {message}", file=sys.stderr, flush=True)


@dataclass
class Row:
    """Measured medians of one workload."""

    workload: Workload
    choice: str
    times: dict[str, float] = field(default_factory=dict)  # column → ms (scaled)
    notes: dict[str, str] = field(default_factory=dict)  # column → why there is no time
    errors: dict[str, float] = field(default_factory=dict)  # column → relative error

    def ratio(self, column: str) -> float | None:
        """``auto ÷ column``, or None when either was not timed."""
        if "auto" not in self.times or column not in self.times:
            return None
        return self.times["auto"] / self.times[column]


class _Chosen(Exception):
    """Carries the strategy name the dispatcher returned, and stops the computation."""


def auto_choice(workload: Workload, image: np.ndarray) -> str:
    """The strategy ``auto`` picks (the dispatcher is probed, nothing is computed)."""
    name = "choose_transpose" if workload.transposed else "choose_forward"
    original = getattr(engines, name)

    def spy(problem: Any) -> str:
        raise _Chosen(original(problem))

    setattr(engines, name, spy)
    try:
        workload.convcli(image)
    except _Chosen as chosen:
        return str(chosen)
    finally:
        setattr(engines, name, original)
    return "?"


def warm_up_and_check(contenders: list[Contender], workload: Workload, crop: np.ndarray,
                      row: Row) -> list[Contender]:
    """Run each contender once, compare with convcli ``auto``; keep those that ran.

    The first contender must be convcli ``auto`` on the full input: its
    result is the reference of the full-size contenders (``auto`` on
    ``crop`` is the reference of the cropped ones). Errors go to ``row``.
    """
    expected_full: np.ndarray | None = None
    expected_crop = workload.convcli(crop)
    kept = []
    for contender in contenders:
        try:
            result = contender.run()
        except ConvcliError:  # a strategy that does not apply to this problem
            row.notes[contender.column] = NOT_APPLICABLE
            continue
        if contender.check is not None:
            result = contender.check()
        out = contender.to_hwc(result)
        if expected_full is None:
            expected_full = out
        expected = expected_crop if contender.on_crop else expected_full
        row.errors[contender.column] = error = relative_error(out, expected)
        if not error <= TOLERANCE:
            progress(f"!!! MISMATCH {workload.key} {contender.column}: relative error {error:.3g} "
                     f"(shape {out.shape} vs {expected.shape})")
        kept.append(contender)
    return kept


def bench_workload(workload: Workload, image: np.ndarray, repeat: int,
                   modules: dict[str, ModuleType | None]) -> Row:
    """Check and time convcli and the peers on one workload."""
    rows, cols = workload.input_shape(image.shape[:2])
    data = np.ascontiguousarray(image[:rows, :cols]) if workload.transposed else image
    crop_rows, crop_cols = crop_shape(data.shape)
    crop = np.ascontiguousarray(data[:crop_rows, :crop_cols])
    row = Row(workload, auto_choice(workload, data))
    row.notes.update({column: SKIP for key, column in SKIPPED if key == workload.key})
    contenders = convcli_contenders(workload, data) + peer_contenders(workload, data, crop, modules)
    progress(f"{workload.key}: warm-up and checks ({len(contenders)} contenders)")
    contenders = warm_up_and_check(contenders, workload, crop, row)
    progress(f"{workload.key}: {repeat} interleaved rounds")
    medians = interleaved_medians({c.column: stopwatch(c.run) for c in contenders}, repeat)
    for contender in contenders:
        row.times[contender.column] = medians[contender.column] * contender.scale * 1e3
    return row


# --------------------------------------------------------------------------- W8 and start-up


def convcli_command() -> list[str]:
    """The ``convcli`` script of this interpreter's environment, else ``python -m convcli``."""
    script = Path(sys.executable).parent / "convcli"
    return [str(script)] if script.exists() else [sys.executable, "-m", "convcli"]


def make_photo_png(path: Path, size: tuple[int, int]) -> None:
    """A photo-like RGB PNG of ``size`` (H, W): the astronaut sample, upscaled, plus noise.

    Lanczos upscaling to cover ``size`` (centre crop) makes a smooth image;
    Gaussian noise (σ = 3, seeded) stands in for sensor noise, which is what
    makes a real photograph expensive to deflate. Without the sample, a
    smooth colour pattern takes its place.
    """
    rows, cols = size
    if SAMPLE_PHOTO.exists():
        photo = Image.open(SAMPLE_PHOTO).convert("RGB")
        factor = max(rows / photo.height, cols / photo.width)
        big = photo.resize((round(photo.width * factor), round(photo.height * factor)),
                           Image.Resampling.LANCZOS)
        top, left = (big.height - rows) // 2, (big.width - cols) // 2
        base = np.asarray(big, dtype=np.float32)[top : top + rows, left : left + cols]
    else:
        r, c = np.mgrid[0:rows, 0:cols] / max(rows, cols)
        base = 127.5 + 100 * np.stack([np.sin(9 * r + 4 * c), np.cos(7 * c), np.sin(5 * r * c)], -1)
    noise = np.random.default_rng(0).normal(0.0, 3.0, base.shape)
    pixels = np.clip(np.rint(base + noise), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, compress_level=6)


@dataclass(frozen=True)
class Tool:
    """A W8 command-line tool: its column name and how to build its command line."""

    column: str
    command: Callable[[Path, Path, int | None], tuple[list[str], Path]]


def convcli_apply(png: Path, workdir: Path, level: int | None) -> tuple[list[str], Path]:
    """``convcli apply`` with Sobel-x, ``--scale clip``; ``level`` None: convcli's default."""
    out = workdir / f"convcli-{level if level is not None else 'default'}.png"
    options = [] if level is None else ["--compress-level", str(level)]
    return [*convcli_command(), "apply", str(png), "-k", "sobel-x", "--scale", "clip", "-q",
            *options, "-o", str(out)], out


def vips_conv(png: Path, workdir: Path, level: int | None) -> tuple[list[str], Path]:
    """``vips conv`` with a Sobel-x matrix file; its default PNG compression is 6."""
    level = 6 if level is None else level
    matrix = workdir / "sobel-x.mat"
    matrix.write_text("3 3 1 0\n-1 0 1\n-2 0 2\n-1 0 1\n")
    out = workdir / f"vips-{level}.png"
    return ["vips", "conv", str(png), f"{out}[compression={level}]", str(matrix)], out


def imagemagick_convolve(png: Path, workdir: Path, level: int | None) -> tuple[list[str], Path]:
    """``convert -morphology Convolve``; ``level`` None: default quality 75 (zlib 7, adaptive)."""
    out = workdir / f"convert-{level if level is not None else 'default'}.png"
    options = [] if level is None else ["-define", f"png:compression-level={level}"]
    return ["convert", str(png), "-morphology", "Convolve", SOBEL_X_SPEC, *options, str(out)], out


TOOLS = (Tool("convcli", convcli_apply), Tool("vips", vips_conv),
         Tool("convert", imagemagick_convolve))
#: W8 rows: label → zlib level given to every tool (None: each tool's default).
W8_LEVELS = {"W8 zlib 6": 6, "W8 zlib 1": 1, "W8 defaults": None}


def run_command(argv: Sequence[str], output: Path | None = None) -> float:
    """Wall time (s) of one subprocess; ``output`` is removed first (untimed)."""
    if output is not None:
        output.unlink(missing_ok=True)
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def warm_up_commands(commands: dict[str, tuple[list[str], Path | None]]) -> dict[str, str]:
    """Run each command once (untimed); returns name → failure message for those that failed."""
    failures = {}
    for name, (argv, output) in commands.items():
        try:
            run_command(argv, output)
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            failures[name] = f"{exc} {detail.decode(errors='replace').strip()[:200]}"
            progress(f"!!! {name} failed: {failures[name]}")
    return failures


@dataclass
class EndToEnd:
    """W8 medians (ms) per row and tool, output sizes and what each tool wrote."""

    times: dict[str, dict[str, float]]
    sizes: dict[str, dict[str, float]]
    notes: dict[str, str]
    failures: dict[str, str]


def bench_end_to_end(png: Path, workdir: Path, repeat: int) -> EndToEnd:
    """Time every installed tool at every W8 level (identical commands timed once)."""
    installed = [t for t in TOOLS if t.column == "convcli" or shutil.which(t.column)]
    plan = {(label, t.column): t.command(png, workdir, level)
            for label, level in W8_LEVELS.items() for t in installed}
    unique = {" ".join(argv): (argv, out) for argv, out in plan.values()}
    progress(f"W8: warm-up ({len(unique)} commands)")
    failures = warm_up_commands(unique)
    measures = {key: functools.partial(run_command, argv, out)
                for key, (argv, out) in unique.items() if key not in failures}
    progress(f"W8: {repeat} interleaved rounds")
    medians = interleaved_medians(measures, repeat)
    times: dict[str, dict[str, float]] = {label: {} for label in W8_LEVELS}
    sizes: dict[str, dict[str, float]] = {label: {} for label in W8_LEVELS}
    for (label, column), (argv, out) in plan.items():
        key = " ".join(argv)
        if key in medians:
            times[label][column] = medians[key] * 1e3
            sizes[label][column] = out.stat().st_size / 1e6
    notes = describe_outputs(png, {c: out for (label, c), (_, out) in plan.items()
                                   if label == "W8 zlib 6" and out.exists()})
    failed = {column: failures[" ".join(argv)] for (_, column), (argv, _) in plan.items()
              if " ".join(argv) in failures}
    return EndToEnd(times, sizes, notes, failed)


def describe_outputs(png: Path, outputs: dict[str, Path]) -> dict[str, str]:
    """What each tool's 8-bit PNG holds, compared with Sobel-x computed by convcli's core."""
    image = np.asarray(Image.open(png).convert("RGB"), dtype=np.float32)
    correlation = np.clip(conv2d(image, SOBEL_X, padding="same"), 0, 255)
    convolution = np.clip(conv2d(image, SOBEL_X, padding="same", flip=True), 0, 255)
    inner = (slice(1, -1), slice(1, -1))
    notes = {}
    for column, path in outputs.items():
        pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
        if pixels.shape != correlation.shape:
            notes[column] = f"shape {pixels.shape}, expected {correlation.shape}"
            continue
        if np.array_equal(pixels[inner], correlation[inner]):
            what = "the correlation clipped to 0–255 (= convcli's core)"
        elif np.array_equal(pixels[inner], convolution[inner]):
            what = "the true convolution (flipped kernel) clipped to 0–255"
        else:
            delta = np.abs(pixels[inner] - correlation[inner])
            what = f"something else (max |Δ| {delta.max():.0f} vs the clipped correlation)"
        edge = np.abs(pixels - correlation)
        edge[inner] = 0
        border = ("border identical" if not edge.any()
                  else f"border pixels differ (max |Δ| {edge.max():.0f}: another edge rule)")
        notes[column] = f"interior is {what}; {border}"
    return notes


def bench_startup(repeat: int) -> dict[str, float]:
    """Median wall times (ms) of ``convcli shape 224 -k 3`` and ``python -c pass``."""
    commands = {"convcli shape 224 -k 3": ([*convcli_command(), "shape", "224", "-k", "3"], None),
                "python -c pass": ([sys.executable, "-c", "pass"], None)}
    progress("start-up: warm-up and rounds")
    failures = warm_up_commands(commands)
    measures = {name: functools.partial(run_command, argv) for name, (argv, _) in commands.items()
                if name not in failures}
    return {name: s * 1e3 for name, s in interleaved_medians(measures, repeat).items()}


# --------------------------------------------------------------------------- report


def fmt_ms(ms: float) -> str:
    """Milliseconds for a table cell: integers from 10 ms, one decimal below."""
    return f"{ms:.0f}" if ms >= 10 else f"{ms:.1f}"


def fmt_ratio(ratio: float | None) -> str:
    """A ratio with two significant digits (``–`` when not measured)."""
    if ratio is None:
        return NOT_APPLICABLE
    return f"{ratio:.0f}" if ratio >= 10 else f"{ratio:.2g}" if ratio >= 0.01 else f"{ratio:.1g}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def kernel_table(rows: list[Row]) -> str:
    """One row per workload: auto's choice, auto and strategy times, peer times, ratios."""
    header = ["workload", "auto →", "auto", *STRATEGIES,
              *(f"{p}*" if p in CROPPED_PEERS else p for p in PEERS), *(f"auto ÷ {p}" for p in PEERS)]
    body = []
    for row in rows:
        cells = [f"{row.workload.key} {row.workload.title}", row.choice]
        for column in ("auto", *STRATEGIES, *PEERS):
            cells.append(fmt_ms(row.times[column]) if column in row.times
                         else row.notes.get(column, NOT_APPLICABLE))
        cells += [fmt_ratio(row.ratio(p)) for p in PEERS]
        body.append(cells)
    return markdown_table(header, body)


def end_to_end_table(result: EndToEnd) -> str:
    """W8 rows: median ms per tool, ratios convcli ÷ peer, output sizes."""
    tools = [t.column for t in TOOLS]
    header = ["workload", *(f"{t} ms" for t in tools), "convcli ÷ vips", "convcli ÷ convert",
              "output MB (" + " / ".join(tools) + ")"]
    body = []
    for label, times in result.times.items():
        cells = [label, *(fmt_ms(times[t]) if t in times else FAILED if t in result.failures
                          else NOT_APPLICABLE for t in tools)]
        cells += [fmt_ratio(times["convcli"] / times[p] if "convcli" in times and p in times else None)
                  for p in ("vips", "convert")]
        sizes = result.sizes[label]
        cells.append(" / ".join(f"{sizes[t]:.1f}" if t in sizes else NOT_APPLICABLE for t in tools))
        body.append(cells)
    return markdown_table(header, body)


def startup_table(startup: dict[str, float]) -> str:
    """One row: convcli shape, python -c pass, their ratio."""
    convcli_ms, python_ms = startup.get("convcli shape 224 -k 3"), startup.get("python -c pass")
    ratio = convcli_ms / python_ms if convcli_ms and python_ms else None
    return markdown_table(
        ["start-up", "convcli shape 224 -k 3 ms", "python -c pass ms", "ratio"],
        [["start-up", *(fmt_ms(v) if v else NOT_APPLICABLE for v in (convcli_ms, python_ms)),
          fmt_ratio(ratio)]])


@dataclass(frozen=True)
class Target:
    """A goal of the issue: every listed ratio at most ``limit``."""

    label: str
    limit: float
    ratios: dict[str, float | None]

    def verdict(self) -> str:
        """``met`` / ``NOT met`` / ``not measured``, with the worst ratio."""
        measured = {k: v for k, v in self.ratios.items() if v is not None}
        if not measured:
            return "not measured (peer not available)"
        worst = max(measured, key=measured.__getitem__)
        missing = sorted(set(self.ratios) - set(measured))
        status = "met" if measured[worst] <= self.limit and not missing else "NOT met"
        if missing and measured[worst] <= self.limit:
            status = "not measured for " + ", ".join(missing)
        return f"{status} (worst {worst}: {fmt_ratio(measured[worst])})"


def opencv_best(row: Row) -> float | None:
    """``auto ÷`` the faster of OpenCV's two filters."""
    ratios = [r for r in (row.ratio("cv2.filter2D"), row.ratio("cv2.sepFilter2D")) if r is not None]
    return max(ratios) if ratios else None


def targets(rows: list[Row], end_to_end: EndToEnd, startup: dict[str, float]) -> list[Target]:
    """The issue's table of targets, filled with the measured ratios."""
    by_key = {row.workload.key: row for row in rows}

    def each(keys: Sequence[str], ratio: Callable[[Row], float | None]) -> dict[str, float | None]:
        return {k: ratio(by_key[k]) if k in by_key else None for k in keys}

    def w8(label: str, peer: str) -> float | None:
        times = end_to_end.times[label]
        return times["convcli"] / times[peer] if "convcli" in times and peer in times else None

    all_keys = [row.workload.key for row in rows]
    startup_ratio = None
    if {"convcli shape 224 -k 3", "python -c pass"} <= set(startup):
        startup_ratio = startup["convcli shape 224 -k 3"] / startup["python -c pass"]
    return [
        Target("every W1–W7 vs scipy.signal.correlate2d loop", 0.05,
               each(all_keys, lambda r: r.ratio("signal.correlate2d"))),
        Target("every W1–W7 vs scipy.ndimage.correlate", 0.5,
               each(all_keys, lambda r: r.ratio("ndimage.correlate"))),
        # issue 17 (compiled kernels): W1, W4, W5 ≤ 0.8 OpenCV; W2, W3 (random and uniform banks) ≤ 0.8
        # torch; W6 and W7 stay ≤ 0.7
        Target("W2, W3 vs torch (2 threads, channels-last)", 0.8,
               each(["W2", "W3"], lambda r: r.ratio("torch"))),
        Target("W2u, W3u (uniform bank) vs torch (2 threads, channels-last)", 0.8,
               each(["W2u", "W3u"], lambda r: r.ratio("torch"))),
        Target("W7 vs torch (2 threads, channels-last)", 0.7, each(["W7"], lambda r: r.ratio("torch"))),
        Target("W1 vs OpenCV (faster of filter2D, sepFilter2D)", 0.8, each(["W1"], opencv_best)),
        Target("W4, W5 vs OpenCV sepFilter2D", 0.8,
               each(["W4", "W5"], lambda r: r.ratio("cv2.sepFilter2D"))),
        Target("W6 vs OpenCV filter2D", 0.7, each(["W6"], lambda r: r.ratio("cv2.filter2D"))),
        Target("W8 end to end at equal zlib level vs `vips` CLI", 1.5,
               {"zlib 6": w8("W8 zlib 6", "vips"), "zlib 1": w8("W8 zlib 1", "vips")}),
        Target("W8 vs ImageMagick `convert -morphology Convolve` (both at default settings)", 0.5,
               {"defaults": w8("W8 defaults", "convert")}),
        Target("`convcli shape 224 -k 3` wall time vs `python -c pass`", 5.0,
               {"start-up": startup_ratio}),
    ]


def command_version(argv: Sequence[str]) -> str:
    """First line of a tool's version output, or ``not installed``."""
    if shutil.which(argv[0]) is None:
        return f"{argv[0]} not installed"
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    return (result.stdout or result.stderr).strip().splitlines()[0]


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or platform's guess)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(modules: dict[str, ModuleType | None]) -> list[str]:
    """Report lines: machine and library versions."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    def version(name: str) -> str:
        module = modules.get(name)
        return module.__version__ if module is not None else "not installed"

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return [
        f"- Machine: nproc {cores}, {cpu_model()}, {platform.system()} {platform.release()}; "
        f"load average at the end {load} (1, 5, 15 min)",
        f"- Python {platform.python_version()}; convcli {convcli.__version__}; numpy {np.__version__}; "
        f"scipy {scipy.__version__}; torch {version('torch')}; cv2 {version('cv2')}",
        f"- {command_version(['vips', '--version'])}; {command_version(['convert', '--version'])}",
    ]


def footnotes(image_size: tuple[int, int], crop: tuple[int, int], repeat: int,
              end_to_end: EndToEnd) -> list[str]:
    """The notes under the tables: method, crops, skips, what W8's tools wrote."""
    rows, cols = image_size
    lines = [
        f"Times are medians (ms) of {repeat} interleaved runs (a new seeded random order each round) "
        "after one warm-up run that also checked the output against convcli `auto`; one process, "
        f"{THREADS} threads for OpenCV and torch. "
        f"Image: {cols}×{rows} RGB float32 (uniform random 0–255), zero border, `same`; W7's input is "
        f"its top-left {cols // 2}×{rows // 2}. `auto →` is the strategy `auto` picked; "
        f"`{NOT_APPLICABLE}`: does not apply or not installed.",
        f"\\* scipy.signal.correlate2d and scipy.ndimage.correlate ran on the top-left {crop[1]}×{crop[0]} "
        "crop of each workload's input (about 1/16 of the pixels) and their times are scaled by the pixel "
        "ratio (a full-image run measured 0–27 % slower than this estimate on W1/W2, so these ratios "
        "are conservative); both loop over channels (and kernels, summed, for W2/W3/W7); W3 keeps "
        "every second row/column of the stride-1 result; W7 correlates the zero-inserted planes "
        "with the flipped kernels (`full`), then crops.",
        "`ndimage 1-D`: two ndimage.correlate1d passes on the (H, W, C) array (what gaussian_filter does), "
        "for the rank-1 kernels only. OpenCV: filter2D / sepFilter2D on the (H, W, C) image with "
        "BORDER_CONSTANT; for W2/W3 a loop of filter2D over kernels and channels (W3 subsampled); "
        "no OpenCV equivalent of W7.",
        "scipy.signal/ndimage, OpenCV and torch are imported before convcli's first call (their "
        "OpenBLAS copies mapped first once made convcli hold the wrong one to a thread; fixed).",
        "torch: channels-last NCHW; padding=k//2, which at stride 2 (W3) is not TF-SAME (0 top, "
        "1 bottom): W3 was timed with padding=1 and checked with explicit F.pad(0, 1, 0, 1).",
        "`skip` (not timed; one call measured on the 4K image while writing the script): "
        + "; ".join(f"{k} {c}: {why}" for (k, c), why in SKIPPED.items()) + ".",
        "W8 (whole process, wall time): input is sample_images/astronaut.png upscaled (Lanczos) to "
        f"{cols}×{rows} plus Gaussian noise σ 3; `convcli apply -k sobel-x --scale clip`, "
        "`vips conv in out.png[compression=L] sobel-x.mat` (mask `3 3 1 0` + rows), "
        "`convert in.png -morphology Convolve '3x3: …' [-define png:compression-level=L] out.png`. "
        "`W8 defaults`: no level option (convcli 4, vips 6, ImageMagick quality 75 = zlib 7 adaptive).",
    ]
    lines += [f"W8 output of {tool} (zlib 6): {note}." for tool, note in end_to_end.notes.items()]
    lines += [f"W8 {tool} FAILED: {why}" for tool, why in end_to_end.failures.items()]
    return lines


def check_summary(rows: list[Row]) -> tuple[list[str], bool]:
    """Report lines on the output checks, and whether all of them passed."""
    errors = [(error, row.workload.key, column) for row in rows for column, error in row.errors.items()]
    bad = [(e, k, c) for e, k, c in errors if not e <= TOLERANCE]
    if bad:
        lines = [f"**!!! MISMATCH** {k} {c}: relative error {e:.3g} > {TOLERANCE:g}" for e, k, c in bad]
        return lines, False
    worst = max(errors)
    return [f"All {len(errors)} checked outputs match convcli `auto` within {TOLERANCE:g} of max |out| "
            f"(worst: {worst[1]} {worst[2]}, {worst[0]:.2g})."], True


def report(rows: list[Row], end_to_end: EndToEnd, startup: dict[str, float], args: argparse.Namespace,
           modules: dict[str, ModuleType | None], image_size: tuple[int, int], elapsed: float) -> str:
    """The whole markdown report."""
    check_lines, _ = check_summary(rows)
    target_rows = [[t.label, f"≤ {t.limit:g}", t.verdict()]
                   for t in targets(rows, end_to_end, startup)]
    mode = "--quick" if args.quick else "full"
    parts = [
        "# convcli benchmark results",
        "",
        f"`python benchmarks/run.py` ({mode}, repeat {args.repeat}), "
        f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, took {elapsed / 60:.1f} min.",
        "",
        *environment(modules),
        "",
        "## Kernels (ms; ratios are convcli auto ÷ peer, below 1 means convcli is faster)",
        "",
        kernel_table(rows),
        "",
        "## End to end: PNG → Sobel-x → 8-bit PNG (ms, whole process)",
        "",
        end_to_end_table(end_to_end),
        "",
        startup_table(startup),
        "",
        "## Targets (convcli auto ÷ peer)",
        "",
        markdown_table(["target", "limit", "verdict"], target_rows),
        "",
        "## Checks",
        "",
        *check_lines,
        "",
        "## Notes",
        "",
        *(f"- {line}" for line in footnotes(image_size, crop_shape(image_size), args.repeat,
                                            end_to_end)),
    ]
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------- main


def peer_modules() -> dict[str, ModuleType | None]:
    """scipy.signal, scipy.ndimage, and cv2 / torch when importable (held to :data:`THREADS`)."""
    modules: dict[str, ModuleType | None] = {
        name: importlib.import_module(name) for name in ("scipy.signal", "scipy.ndimage")
    }
    for name in ("cv2", "torch"):
        try:
            modules[name] = importlib.import_module(name)
        except ImportError:
            modules[name] = None
    if modules["cv2"] is not None:
        modules["cv2"].setNumThreads(THREADS)
    if modules["torch"] is not None:
        modules["torch"].set_num_threads(THREADS)
    return modules


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; ``--repeat`` and ``--output`` default by mode."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_SIZE[1]}×{QUICK_SIZE[0]} image, {QUICK_REPEAT} runs, prints only")
    parser.add_argument("--repeat", type=int, default=None,
                        help=f"timed runs per contender (default {FULL_REPEAT}, quick {QUICK_REPEAT})")
    parser.add_argument("--only", default="",
                        help="comma-separated workload keys and/or `reduce` (e.g. W2u,W3u,reduce): "
                             "time just those, print their tables, no W8, start-up or report file")
    parser.add_argument("--output", type=Path, default=None,
                        help=f"markdown report path (default: {DEFAULT_OUTPUT.relative_to(ROOT)} "
                             "for a full run, none for --quick)")
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = QUICK_REPEAT if args.quick else FULL_REPEAT
    if args.repeat < 1:
        parser.error(f"--repeat must be a positive integer, got {args.repeat}")
    if args.output is None and not args.quick and not args.only:
        args.output = DEFAULT_OUTPUT
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when an output check or a convcli command failed."""
    args = parse_args(argv)
    start = time.perf_counter()
    modules = peer_modules()
    size = QUICK_SIZE if args.quick else FULL_SIZE
    rng = np.random.default_rng(0)
    image = (rng.random((*size, 3)) * 255).astype(np.float32)
    only = set(filter(None, args.only.split(",")))
    selected = [w for w in workloads(rng) if not only or w.key in only]
    rows = [bench_workload(w, image, args.repeat, modules) for w in selected]
    reduce_size = size if args.quick else REDUCE_SIZE
    reduce_results = bench_reduce(reduce_size, args.repeat) if not only or "reduce" in only else {}
    if only:
        print(kernel_table(rows) if rows else "", reduce_table(reduce_results, reduce_size)
              if reduce_results else "", *check_summary(rows)[0] if rows else [], sep="\n\n")
        return 0 if not rows or check_summary(rows)[1] else 1
    with tempfile.TemporaryDirectory(prefix="convcli-bench-") as tmp:
        workdir = Path(tmp)
        png = workdir / "photo.png"
        make_photo_png(png, size)
        end_to_end = bench_end_to_end(png, workdir, args.repeat)
    startup = bench_startup(args.repeat)
    text = report(rows, end_to_end, startup, args, modules, size, time.perf_counter() - start)
    text += "\n## Reduce steps (ms; the issue's target: convcli ≤ 30 ms)\n\n" + reduce_table(
        reduce_results, reduce_size) + "\n"
    print(text, end="")
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
        progress(f"wrote {args.output}")
    _, checks_passed = check_summary(rows)
    convcli_ran = "convcli" not in end_to_end.failures and "convcli shape 224 -k 3" in startup
    return 0 if checks_passed and convcli_ran else 1


if __name__ == "__main__":
    sys.exit(main())
