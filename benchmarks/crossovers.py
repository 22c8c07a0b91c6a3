"""Measure where convcli's strategies cross over, to calibrate ``method='auto'``.

Times every applicable strategy (medians of interleaved runs after a
warm-up, in one process) on a 1920×1080 RGB float32 image for families of
problems that differ in one parameter, and prints, per family, which
strategy won at each value together with each strategy's time relative to
the winner. The cost model in :func:`convcli.engines.choose_forward` and
its comments quote these tables.

Usage::

    python benchmarks/crossovers.py [--repeat 5] [--size 1080x1920] [--cpu]
        [--family sum] [--strategies native,gemm]

The last family is transposed convolution (``polyphase`` and the compiled
``native-polyphase``, which :func:`convcli.engines.choose_transpose` picks
between), on a smaller input with C channels.

``--cpu`` times process CPU seconds (all threads) instead of wall time: on a
shared, busy machine it is the steadier measure (wall ≈ CPU / workers for
the banded strategies). The compiled strategies (``native``,
``native-separable``) are timed when the extension is built.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from convcli import conv2d, conv_transpose2d
from convcli.engines import ForwardProblem


def gaussian(size: int) -> np.ndarray:
    """A normalised ``size×size`` Gaussian with σ = size / 6 (rank 1)."""
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * (size / 6) ** 2))
    return np.outer(g, g) / g.sum() ** 2


def families(rng: np.random.Generator) -> dict[str, list[tuple[str, dict]]]:
    """Family name → list of (label, conv2d kwargs without the image)."""
    out: dict[str, list[tuple[str, dict]]] = {}
    out["depthwise random k×k"] = [
        (f"k={k}", {"bank": rng.standard_normal((k, k)), "padding": "same"})
        for k in (3, 5, 7, 9, 11, 13, 15, 21, 31)
    ]
    out["depthwise gaussian k×k (rank 1)"] = [
        (f"k={k}", {"bank": gaussian(k), "padding": "same"}) for k in (3, 5, 7, 9, 15, 31, 51)
    ]
    out["sum bank 3×3, 3→F"] = [
        (f"F={f}", {"bank": rng.standard_normal((f, 3, 3, 3)), "padding": "same",
                    "channels": "sum"})
        for f in (1, 2, 3, 4, 8, 32)
    ]
    out["sum bank k×k, 3→8"] = [
        (f"k={k}", {"bank": rng.standard_normal((8, k, k, 3)), "padding": "same",
                    "channels": "sum"})
        for k in (3, 5, 7, 9, 11, 15)
    ]
    out["sum uniform 2-D bank 3×3 (channels summed first), 3→F"] = [
        (f"F={f}", {"bank": rng.standard_normal((f, 3, 3)), "padding": "same", "channels": "sum"})
        for f in (1, 2, 8)
    ]
    out["depthwise bank 3×3, F kernels"] = [
        (f"F={f}", {"bank": rng.standard_normal((f, 3, 3)), "padding": "same"})
        for f in (1, 2, 4, 8)
    ]
    # transposed: an input of (H/8, W/8, C) (C = 64 would otherwise need gigabytes)
    out["transposed 4×4 stride 2, C→C (input 1/8 of the size)"] = [
        (f"C={c}", {"bank": rng.standard_normal((c, 4, 4, c)), "stride": 2, "padding": 1, "channels": "sum",
                    TRANSPOSED: (8, c)})
        for c in (1, 3, 8, 16, 32, 64)
    ]
    return out


#: Key of a case's kwargs that makes it a conv_transpose2d case: (size divisor, input channels).
TRANSPOSED = "transposed"


def median_times(calls: dict[str, Callable[[], object]], repeat: int,
                 clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Median seconds of each call (by ``clock``), runs interleaved, after one warm-up each."""
    for call in calls.values():
        call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeat):
        for name, call in calls.items():
            start = clock()
            call()
            samples[name].append(clock() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


class _Chosen(Exception):
    """Carries the name ``choose_forward`` returned, and stops the computation."""


def auto_choice(image: np.ndarray, kwargs: dict, transposed: bool = False) -> str:
    """The strategy ``auto`` picks for this problem (the dispatcher is probed, not run)."""
    import convcli.engines as engines

    name = "choose_transpose" if transposed else "choose_forward"
    original = getattr(engines, name)

    def spy(problem: ForwardProblem) -> str:
        raise _Chosen(original(problem))

    setattr(engines, name, spy)
    try:
        (conv_transpose2d if transposed else conv2d)(image, **kwargs)
    except _Chosen as chosen:
        return str(chosen)
    finally:
        setattr(engines, name, original)
    return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--size", default="1080x1920", help="HxW of the RGB test image")
    parser.add_argument("--cpu", action="store_true", help="process CPU time instead of wall time")
    parser.add_argument("--family", default="", help="only families whose name contains this")
    parser.add_argument("--strategies", default="", help="comma-separated subset to time")
    args = parser.parse_args()
    clock = time.process_time if args.cpu else time.perf_counter
    rows, cols = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    image = (rng.random((rows, cols, 3)) * 255).astype(np.float32)
    from convcli.engines import FORWARD_ENGINES, TRANSPOSE_ENGINES

    forward = tuple(name for name in ("direct", "separable", "gemm", "fft", "native", "native-separable")
                    if name in FORWARD_ENGINES)
    backward = tuple(name for name in ("polyphase", "native-polyphase") if name in TRANSPOSE_ENGINES)
    if args.strategies:
        forward = tuple(name for name in args.strategies.split(",") if name in FORWARD_ENGINES)
        backward = tuple(name for name in args.strategies.split(",") if name in TRANSPOSE_ENGINES)
    unit = "CPU ms" if args.cpu else "ms"
    for family, cases in families(rng).items():
        if args.family not in family:
            continue
        transposed = TRANSPOSED in cases[0][1]
        strategies = backward if transposed else forward
        print(f"\n## {family}  ({rows}×{cols} float32, {unit})")
        print("| case | " + " | ".join(strategies) + " | winner | auto |")
        print("| --- " * (len(strategies) + 3) + "|")
        for label, kwargs in cases:
            kwargs = dict(kwargs)
            case_image = image
            if transposed:
                shrink, channels = kwargs.pop(TRANSPOSED)
                case_image = rng.random((rows // shrink, cols // shrink, channels), dtype=np.float32)
            bank = np.asarray(kwargs["bank"])
            taps = bank.shape[-2] * bank.shape[-1] if bank.ndim == 2 else bank.shape[1] * bank.shape[2]
            calls = {}
            for name in strategies:
                if name in ("direct", "native") and taps * (bank.shape[0] if bank.ndim > 2 else 1) > 400:
                    continue  # minutes; clearly lost
                if name.endswith("separable") and "random" in family and taps > 121:
                    continue  # full rank: k components, clearly lost
                run = conv_transpose2d if transposed else conv2d
                calls[name] = (lambda n=name, kw=kwargs, f=run, x=case_image: f(x, method=n, **kw))
            times = median_times(calls, args.repeat, clock)
            best = min(times, key=times.get)
            cells = [f"{times[n] * 1e3:.0f}" if n in times else "–" for n in strategies]
            choice = auto_choice(case_image, kwargs, transposed)
            print(f"| {label} | " + " | ".join(cells) + f" | {best} | {choice} |", flush=True)


if __name__ == "__main__":
    main()
