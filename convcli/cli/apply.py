"""``convcli apply``: filter images with a kernel bank and save the feature maps.

The command is a thin layer: it parses options, reads each input
(:mod:`convcli.imageio`), resolves the bank (:mod:`convcli.presets`), calls
the core (:func:`convcli.conv2d` / :func:`convcli.conv_transpose2d`),
reduces and groups the maps (:mod:`convcli.maps`), maps floats to pixels
(:mod:`convcli.display`) and writes every file atomically. numpy, Pillow and
scipy are imported inside the command only.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from convcli.cli import err
from convcli.errors import ConvcliError, ImageError, OptionError

__all__ = ["apply"]


class Channels(StrEnum):
    """How kernels meet colour channels."""

    depthwise = "depthwise"
    sum = "sum"
    gray = "gray"


class Reduce(StrEnum):
    """How the bank's maps are combined."""

    none = "none"
    magnitude = "magnitude"
    max = "max"
    min = "min"
    sum = "sum"


class Format(StrEnum):
    """Output file formats."""

    png = "png"
    tiff = "tiff"
    npy = "npy"
    npz = "npz"


class Alpha(StrEnum):
    """What happens to an input's alpha channel."""

    drop = "drop"
    filter = "filter"


APPLY_HELP = """Filter images with a kernel bank and save the feature maps.

\b
Examples:
  convcli apply photo.png -k sobel                 # photo.sobel-x.png, photo.sobel-y.png
  convcli apply photo.png -k sobel --reduce magnitude -o edges.png
  convcli apply photo.png -k gaussian:sigma=2 -s 2 -o small.png
  convcli apply photo.png -k "1,0,-1;2,0,-2;1,0,-1" --channels gray -o gx.png
  convcli apply a.png -k gaussian -f npy -o - | convcli apply - -k sobel -o e.png
  convcli apply *.png -k kirsch --reduce max -o out/     # a batch into a directory

\b
The operation is CNN convolution (cross-correlation, no flip; --flip for true
convolution), exactly as PyTorch's conv2d / conv_transpose2d. Values are read in
their native range (0-255, 0-65535) and computed in float32; npy/npz outputs hold
the exact float32 (H', W', N) result, image outputs are mapped to pixels by
--scale. Output files are written atomically; existing files need --force.
"""


@dataclass
class _Settings:
    """Parsed, validated options shared by every input of a batch."""

    geometry: dict[str, Any]
    transpose: bool
    reduce: str
    scale: str
    out_format: str | None
    output: str | None
    force: bool
    verify: bool
    quiet: bool
    as_json: bool
    compress_level: int
    bit_depth: int | None
    alpha: str
    max_pixels: int | None
    montage: str | None = None
    specs: tuple[str, ...] = ()
    batch: bool = False
    written: set[str] = field(default_factory=set)


def _parse_bias(text: str) -> Any:
    parts = [p for p in text.replace(";", ",").split(",") if p.strip()]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise OptionError(f"`bias` must be a number or comma-separated numbers, got {text!r}") from None
    if not values:
        raise OptionError("`bias` is empty")
    return values[0] if len(values) == 1 else values


def _parse_padding(text: str, parse: Any) -> Any:
    """``--padding`` text → name or pads; a word that is not a padding name lists the names."""
    try:
        return parse(text)
    except ConvcliError:
        if any(ch.isdigit() for ch in text):
            raise
        raise OptionError(
            f"`padding` must be valid, same, full, N, PH,PW or T,B,L,R, got {text!r}"
        ) from None


def _geometry(stride: str, padding: str, border: str, dilation: str, channels: str, flip: bool,
              bias: str, output_padding: str, transpose: bool, method: str, dtype: str) -> dict:
    from convcli.borders import parse_border
    from convcli.geometry import parse_int_pair, parse_padding_text

    options: dict[str, Any] = {
        "stride": parse_int_pair(stride, "stride"),
        "padding": _parse_padding(padding, parse_padding_text),
        "dilation": parse_int_pair(dilation, "dilation"),
        "channels": channels,
        "flip": flip,
        "bias": _parse_bias(bias),
        "method": method,
        "dtype": dtype,
    }
    out_pads = parse_int_pair(output_padding, "output-padding", minimum=0)
    if transpose:
        if options["padding"] == "full":
            raise OptionError("`--padding full` is not defined with --transpose (use valid, same or N)")
        options["output_padding"] = out_pads
        if border.strip().lower() != "zero":
            raise OptionError("`--border` does not apply to --transpose (its padding crops the output)")
    else:
        if out_pads != (0, 0):
            raise OptionError("`--output-padding` only applies with --transpose")
        options["border"] = parse_border(border)
    if dtype not in ("float32", "float64"):
        raise OptionError(f"`dtype` must be float32 or float64, got {dtype!r}")
    return options


def _is_directory_target(output: str) -> bool:
    return Path(output).is_dir() or output.endswith(("/", "\\"))


def _check_output(settings: _Settings, batch: bool) -> None:
    """Validate ``-o``/``-f``/``--montage`` before any image is read (validate first, compute second)."""
    from convcli.imageio import format_from_suffix

    if settings.montage and Path(settings.montage).suffix.lower() not in ("", ".png"):
        raise OptionError(f"--montage {settings.montage}: the contact sheet is a PNG; name it .png")
    output = settings.output
    if output is None:
        return
    if output == "-":
        if settings.as_json:
            raise OptionError("--json and -o - both want stdout; choose one")
        if batch:
            raise OptionError("a batch of several inputs cannot be written to stdout (-o -); use -o DIR")
        return
    if _is_directory_target(output):
        if not Path(output).is_dir():
            raise OptionError(f"output directory does not exist: {output}")
        return
    if batch:
        raise OptionError(f"several inputs need -o DIR (an existing directory), not a file: {output}")
    suffix = Path(output).suffix
    suffix_format = format_from_suffix(output) if suffix else None
    if settings.out_format and suffix_format and suffix_format != settings.out_format:
        raise OptionError(
            f"-o {output} names a {suffix_format} file but -f asks for {settings.out_format}; "
            "make them agree (or drop one)"
        )
    if not settings.out_format and suffix and suffix_format is None:
        raise OptionError(
            f"-o {output}: unknown output suffix {suffix!r}; use .png, .tif/.tiff, .npy or .npz, "
            "or name the format with -f"
        )
    parent = Path(output).parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise OptionError(f"-o {output}: output directory {parent} {what}")


def _default_format(settings: _Settings, loaded_mode: str) -> str:
    from convcli.imageio import format_from_suffix

    if settings.out_format:
        return settings.out_format
    output = settings.output
    if output and output != "-" and not _is_directory_target(output):
        suffix_format = format_from_suffix(output)
        if suffix_format:
            return suffix_format
    return "npy" if loaded_mode == "npy" else "png"


def _targets(settings: _Settings, stem: str, labels: list[str], fmt: str) -> list[str]:
    """Output paths, one per label (or one for npy/npz); :func:`_check_output` ran before."""
    ext = {"png": ".png", "tiff": ".tiff", "npy": ".npy", "npz": ".npz"}[fmt]
    output = settings.output
    if output == "-":
        if len(labels) != 1:
            raise OptionError(
                f"{len(labels)} maps cannot go to stdout as {fmt}; use -f npy/npz, --reduce, "
                "or -o DIR"
            )
        return ["-"]
    if output is None or _is_directory_target(output):
        folder = Path(output) if output else Path()
        return [str(folder / f"{stem}.{label}{ext}") for label in labels]
    target = Path(output)
    if len(labels) == 1:
        return [str(target)]
    suffix = target.suffix or ext
    return [str(target.with_name(f"{target.stem}.{label}{suffix}")) for label in labels]


def _write(settings: _Settings, target: str, payload: bytes, protect: list[str]) -> None:
    """Write one output atomically; refuse a path this run already wrote for another map/input."""
    from convcli import imageio
    from convcli.errors import OutputError

    if target != "-":
        key = os.path.abspath(target)
        if key in settings.written:
            raise OutputError(
                f"{target}: already written by this run for another input or map; "
                "use -o DIR with distinct input names"
            )
        imageio.write_output(target, payload, force=settings.force, protect=protect)
        settings.written.add(key)
    else:
        imageio.write_output(target, payload)


def _check_targets(settings: _Settings, targets: list[str], protect: list[str]) -> None:
    """Refuse the run's outputs for one input before writing any of them (no partial set)."""
    from convcli import imageio
    from convcli.errors import OutputError

    seen: set[str] = set()
    for target in targets:
        if target == "-":
            continue
        key = os.path.abspath(target)
        if key in settings.written or key in seen:
            raise OutputError(
                f"{target}: already written by this run for another input or map; "
                "use -o DIR with distinct input names"
            )
        seen.add(key)
        imageio.check_output_target(target, force=settings.force, protect=protect)


def _spec_text(settings: _Settings) -> str:
    return " ".join(f"-k {spec}" for spec in settings.specs) or "bank"


def _convolve(loaded: Any, array: Any, weights: Any, settings: _Settings) -> Any:
    """The core call; its geometry/kernel errors name the input and the kernel spec.

    An overflow (weights or results beyond the compute type's range) is an
    error naming the spec, not a numpy warning on stderr and an ``inf`` map.
    """
    import numpy as np

    from convcli import conv2d, conv_transpose2d
    from convcli.errors import KernelError, ShapeError

    name = "stdin" if loaded.source == "-" else loaded.source
    dtype = settings.geometry["dtype"]
    limit = float(np.finfo(dtype).max)
    if weights.size and float(np.max(np.abs(weights))) > limit:
        raise KernelError(f"{_spec_text(settings)}: weights exceed the {dtype} range (±{limit:.3g})"
                          + ("; use --dtype float64" if dtype == "float32" else ""))
    try:
        _check_working_size(array.shape, weights.shape, settings)
    except ShapeError as exc:
        raise ShapeError(f"{name}: {_spec_text(settings)}: {exc}") from None
    try:  # warnings filters, unlike np.errstate, also cover the engines' worker threads
        with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            if settings.transpose:
                maps = conv_transpose2d(array, weights, **settings.geometry)
            else:
                maps = conv2d(array, weights, **settings.geometry)
    except (KernelError, ShapeError) as exc:
        raise type(exc)(f"{name}: {_spec_text(settings)}: {exc}") from None
    if maps.size and not (np.isfinite(maps.min()) and np.isfinite(maps.max())) \
            and np.isfinite(array).all():
        raise ShapeError(f"{name}: {_spec_text(settings)}: the result overflows {dtype} "
                         f"(|value| > {limit:.3g})"
                         + ("; use --dtype float64 or smaller weights" if dtype == "float32" else ""))
    return maps


def _check_working_size(image_shape: Any, weights_shape: Any, settings: _Settings) -> None:
    """Refuse a geometry whose padded (or, transposed, upsampled) image is absurdly large.

    The working image is ``H + pad_top + pad_bottom`` rows (forward) or
    ``(H − 1)·s + k_eff + output_padding`` rows (transposed), likewise for
    columns. It may have up to ``max(--max-pixels, 4·H·W)`` pixels, so that a
    typo such as ``-p 30000`` or ``-d 5000`` is an error, not gigabytes of
    memory. ``--max-pixels 0`` lifts the limit.
    """
    from convcli.errors import ShapeError
    from convcli.geometry import effective_kernel_size, pair, resolve_padding2d

    if settings.max_pixels is None:
        return
    geometry = settings.geometry
    rows, cols = image_shape[:2]
    kernel = weights_shape[1:3]
    strides, dilations = pair(geometry["stride"], "stride"), pair(geometry["dilation"], "dilation")
    if settings.transpose:
        out_pads = pair(geometry["output_padding"], "output_padding", minimum=0)
        extents = [(n - 1) * s + effective_kernel_size(k, d) + op
                   for n, k, s, d, op in zip((rows, cols), kernel, strides, dilations, out_pads)]
    else:
        pads = resolve_padding2d((rows, cols), kernel, stride=strides, padding=geometry["padding"],
                                 dilation=dilations)
        extents = [rows + pads[0] + pads[1], cols + pads[2] + pads[3]]
    limit = max(settings.max_pixels, 4 * rows * cols)
    if extents[0] * extents[1] > limit:
        raise ShapeError(
            f"this geometry needs a {extents[0]}×{extents[1]} working image for a {rows}×{cols} "
            f"input ({extents[0] * extents[1]} pixels > limit {limit}); check --padding, "
            "--dilation, --stride (or raise --max-pixels; 0: no limit)"
        )


_VERIFY_TOLERANCE = {"float32": 1e-4, "float64": 1e-10}  # relative to max |reference|


def _verify(source: str, array: Any, weights: Any, maps: Any, n_filters: int,
            settings: _Settings) -> dict[str, Any]:
    """Recompute with scipy.signal; print the difference; a mismatch is an error."""
    import numpy as np

    from convcli.errors import ShapeError
    from convcli.verify import max_abs_difference, reference_conv2d, reference_conv_transpose2d

    geometry = settings.geometry
    reference_options = {k: v for k, v in geometry.items() if k not in ("bias", "method", "dtype")}
    reference = (reference_conv_transpose2d if settings.transpose else reference_conv2d)(
        array, weights, **reference_options
    )
    difference = max_abs_difference(_without_bias(maps, geometry["bias"], n_filters), reference)
    peak = max(1.0, float(np.max(np.abs(reference))) if reference.size else 1.0)
    relative = difference / peak
    name = "stdin" if source == "-" else source
    ok = relative <= _VERIFY_TOLERANCE[geometry["dtype"]]
    if not settings.quiet:
        err(f"verify {name}: max |convcli − scipy.signal| = {difference:.3g} "
            f"(relative {relative:.3g}) {'ok' if ok else 'MISMATCH'}")
    if not ok:
        raise ShapeError(
            f"{name}: --verify: result differs from scipy.signal by {difference:.3g} "
            f"(relative {relative:.3g}); please report this"
        )
    return {"max_abs_difference": difference, "relative": relative}


def _json_number(value: float) -> float | str:
    """JSON has no NaN/inf: give them as strings."""
    import math

    return value if math.isfinite(value) else str(value)


def _run_one(source: str, bank: Any, settings: _Settings, inputs_seen: list[str]) -> dict[str, Any]:
    """Read, convolve, write one input; returns its JSON record."""
    import numpy as np

    from convcli import display, imageio
    from convcli.maps import group_maps, reduce_maps

    loaded = imageio.read_image(source, max_pixels=settings.max_pixels)
    # 8/16-bit pixels go to the core as they are: it converts them band by band
    array = loaded.pixels if loaded.pixels.dtype in (np.uint8, np.uint16) else loaded.array
    channel_names = tuple(loaded.channel_names)
    has_alpha = len(channel_names) in (2, 4) and channel_names[-1] == "A"
    if settings.alpha == "drop" and has_alpha:
        array = array[:, :, :-1]
        channel_names = channel_names[:-1]
    weights = bank.stack()
    maps = _convolve(loaded, array, weights, settings)
    labels = list(bank.labels)
    n_filters = len(labels)
    record: dict[str, Any] = {"input": source, "mode": loaded.mode, "shape_in": list(array.shape),
                              "outputs": []}
    if settings.verify:
        record["verify"] = _verify(source, np.asarray(array, dtype=np.float64), weights, maps, n_filters,
                                   settings)
    if settings.reduce != "none":
        maps = reduce_maps(maps, n_filters, settings.reduce)
        labels = [f"{bank.name}-{settings.reduce}"]
    fmt = _default_format(settings, loaded.mode)
    if maps.shape[2] // len(labels) != len(channel_names):
        channel_names = ()  # sum / gray modes: one channel per kernel
    names = _map_names(labels, maps.shape[2], channel_names)
    record["shape_out"] = list(maps.shape)
    if settings.as_json:  # two passes over every map: only when they are printed
        record["maps"] = [
            {"name": name, "min": _json_number(float(maps[..., i].min())),
             "max": _json_number(float(maps[..., i].max()))}
            for i, name in enumerate(names)
        ]
    protect = list(inputs_seen)
    if fmt in ("npy", "npz"):
        targets = _targets(settings, loaded.stem, [labels[0] if len(labels) == 1 else bank.name], fmt)
    else:
        groups = group_maps(labels, maps.shape[2], channel_names)
        targets = _targets(settings, loaded.stem, [g.label for g in groups], fmt)
    montage_target = _montage_target(settings, loaded.stem) if settings.montage else None
    _check_targets(settings, targets + ([montage_target] if montage_target else []), protect)
    if montage_target:
        _write_montage(settings, maps, names, array, montage_target, protect)
    if fmt in ("npy", "npz"):
        target = targets[0]
        if fmt == "npy":
            payload = imageio.encode_npy(maps if maps.dtype == np.float64
                                         else np.ascontiguousarray(maps, dtype=np.float32))
        else:
            payload = imageio.encode_npz({name: maps[..., i] for i, name in enumerate(names)})
        _write(settings, target, payload, protect)
        record["outputs"].append({"path": target, "format": fmt, "shape": list(maps.shape)})
        _say_written(settings, target, maps.shape)
        return record
    bit_depth = settings.bit_depth or (16 if loaded.bit_depth == 16 else 8)
    hint = bank.display if settings.reduce in ("none", "max", "min", "sum") else None
    for group, target in zip(groups, targets):
        channels = list(group.channels)
        contiguous = channels == list(range(channels[0], channels[-1] + 1))
        # a view when the group's channels are adjacent: each group is written once, and
        # to_pixels may then work in place (maps is not used after this loop)
        plane = maps[:, :, channels[0]:channels[-1] + 1] if contiguous else maps[:, :, channels]
        if settings.scale == "raw":
            if fmt != "tiff":
                raise OptionError("`--scale raw` (float pixels) needs -f tiff, npy or npz")
            payload = imageio.encode_tiff(np.ascontiguousarray(plane, dtype=np.float32))
        else:
            if loaded.bit_depth in (8, 16) and bit_depth != loaded.bit_depth:
                # --bit-depth changes the range of an 8/16-bit picture: 255 ↔ 65535 (× or ÷ 257)
                plane = plane * (257.0 if bit_depth == 16 else 1 / 257.0)
            pixels = display.to_pixels(plane, scale=settings.scale, bit_depth=bit_depth, hint=hint,
                                       overwrite=True)
            if fmt == "png":
                payload = imageio.encode_png(pixels, compress_level=settings.compress_level)
            else:
                payload = imageio.encode_tiff(pixels)
        _write(settings, target, payload, protect)
        record["outputs"].append({"path": target, "format": fmt, "shape": list(plane.shape),
                                  "map": group.label})
        _say_written(settings, target, plane.shape)
    return record


def _without_bias(maps: Any, bias: Any, n_filters: int) -> Any:
    """The maps minus the bias that conv2d added (scalar, per kernel or per channel)."""
    import numpy as np

    values = np.asarray(bias, dtype=np.float64).ravel()
    if values.size == 1:
        return maps - values[0]
    if values.size == maps.shape[2]:
        return maps - values
    return maps - np.repeat(values, maps.shape[2] // n_filters)


def _map_names(labels: list[str], n_out: int, channel_names: tuple[str, ...]) -> list[str]:
    per_kernel = n_out // len(labels)
    if per_kernel == 1:
        return list(labels)
    names = channel_names if len(channel_names) == per_kernel else tuple(f"c{i}" for i in range(per_kernel))
    return [f"{label}.{name}" for label in labels for name in names]


def _montage_target(settings: _Settings, stem: str) -> str:
    """``--montage FILE``; in a batch ``sheet.png`` becomes ``sheet.<stem>.png`` per input."""
    target = Path(settings.montage)
    if settings.batch:
        target = target.with_name(f"{target.stem}.{stem}{target.suffix or '.png'}")
    return str(target)


def _write_montage(settings: _Settings, maps: Any, names: list[str], image: Any, target: str,
                   protect: list[str]) -> None:
    """Write the contact sheet of all maps (next to the input) to ``target``."""
    from convcli import imageio
    from convcli.montage import make_montage

    sheet = make_montage(maps, names, input_image=image)
    _write(settings, target, imageio.encode_png(sheet), protect)
    _say_written(settings, target, sheet.shape)


def _say_written(settings: _Settings, target: str, shape: Any) -> None:
    if settings.quiet or target == "-":
        return
    rows, cols = shape[:2]
    channels = shape[2] if len(shape) > 2 else 1
    err(f"wrote {target} ({rows}×{cols}, {channels} channel{'s' if channels != 1 else ''})")


_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".npy"}


def _expand_inputs(inputs: list[str]) -> list[tuple[str, ConvcliError | None]]:
    """Directories become their image files (sorted); other paths stay as given.

    A directory without image files becomes one failed entry ``(dir, ImageError)``
    so that a batch reports it and goes on.
    """
    from convcli.errors import ImageError

    expanded: list[tuple[str, ConvcliError | None]] = []
    for source in inputs:
        path = Path(source)
        if source != "-" and path.is_dir():
            files = sorted(str(p) for p in path.iterdir()
                           if p.suffix.lower() in _IMAGE_SUFFIXES and p.is_file())
            if not files:
                expanded.append((source, ImageError(
                    f"{source}: directory has no image files "
                    f"({', '.join(sorted(_IMAGE_SUFFIXES))})")))
            expanded.extend((file, None) for file in files)
        else:
            expanded.append((source, None))
    return expanded


_LARGE_IMAGE = 1 << 22  # pixels: a single image this big gets a progress display on a terminal


def _wants_progress(sources: list[str], quiet: bool) -> bool:
    if quiet or not sys.stderr.isatty():
        return False
    if len(sources) > 1:
        return True
    if sources == ["-"]:
        return False
    from convcli.imageio import read_size

    try:
        rows, cols = read_size(sources[0])
    except ConvcliError:
        return False  # read_image reports it
    return rows * cols >= _LARGE_IMAGE


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(),
                        console=Console(stderr=True), transient=True)
    progress.start()
    progress.add_task("convcli apply", total=total)
    return progress


def _summary(bank: Any, sources: list[str], records: list[dict[str, Any]],
             failures: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``--json`` document."""
    return {
        "inputs": sources,
        "outputs": [dict(output, input=record["input"]) for record in records
                    for output in record["outputs"]],
        "kernels": [{"name": label, "shape": list(k.weights.shape)}
                    for label, k in zip(bank.labels, bank.kernels)],
        "bank": bank.name,
        "results": records,
        "succeeded": len(records),
        "failed": failures,
    }


def apply(
    inputs: list[str] = typer.Argument(
        ..., metavar="INPUT...",
        help="Image files (PNG, JPEG, TIFF, BMP, WebP, GIF), .npy arrays (H, W[, C]), "
        "directories of images, or - for stdin.",
    ),
    kernel: list[str] = typer.Option(
        ..., "-k", "--kernel",
        help="Kernel spec, repeatable (all form one bank): a preset (sobel, gaussian:sigma=2, "
        "kirsch, …; see `convcli kernels list`), inline weights '1,0,-1;2,0,-2;1,0,-1' or "
        "'3x3: …', or a file (.npy, text matrix, .toml bank).",
    ),
    stride: str = typer.Option("1", "-s", "--stride", help="Stride: N or ROWS,COLS."),
    padding: str = typer.Option(
        "same", "-p", "--padding",
        help="valid | same (TF/ONNX SAME: output = ceil(H/s)) | full | N | PH,PW | T,B,L,R.",
    ),
    border: str = typer.Option(
        "zero", "--border",
        help="What fills the padding: zero | constant:V | reflect | symmetric | replicate | wrap.",
    ),
    dilation: str = typer.Option("1", "-d", "--dilation", help="Dilation: N or ROWS,COLS."),
    channels: Channels = typer.Option(
        Channels.depthwise, "--channels",
        help="depthwise: each kernel on each channel (a blur keeps colour); sum: each kernel sums "
        "over channels (PyTorch groups=1); gray: luminance first.",
    ),
    flip: bool = typer.Option(False, "--flip", help="Rotate kernels 180° (true convolution)."),
    bias: str = typer.Option("0", "--bias", help="Added to every output: one value, or one per kernel."),
    transpose: bool = typer.Option(
        False, "--transpose",
        help="Transposed convolution (PyTorch conv_transpose2d): upsamples by the stride.",
    ),
    output_padding: str = typer.Option(
        "0", "--output-padding", help="With --transpose: extra rows,cols at the bottom/right (< stride)."
    ),
    reduce: Reduce = typer.Option(
        Reduce.none, "--reduce",
        help="Combine the bank's maps into one: magnitude (sqrt of sum of squares; sobel), max "
        "(compass banks), min, sum.",
    ),
    output: str | None = typer.Option(
        None, "-o", "--output",
        help="A file, an existing directory, or - for stdout. Default: <stem>.<kernel>.<ext> in "
        "the current directory, one file per map.",
    ),
    out_format: Format | None = typer.Option(
        None, "-f", "--format",
        help="png | tiff | npy (exact float32 (H',W',N)) | npz (one array per map). Default: "
        "from the output suffix, else png (npy for .npy input).",
    ),
    scale: str = typer.Option(
        "auto", "--scale",
        help="Float maps to pixels: auto (keeps a blur's range; edges as |x| so negatives stay "
        "visible; preset hints) | clip | abs | minmax | offset:V | raw (float32 TIFF).",
    ),
    bit_depth: int | None = typer.Option(
        None, "--bit-depth",
        help="8 or 16 for image outputs. Default: 16 for 16-bit input, else 8. A depth other than "
             "an 8/16-bit input's rescales 0-255 ↔ 0-65535 (×/÷ 257), so the picture looks the same."
    ),
    compress_level: int | None = typer.Option(
        None, "--compress-level", min=0, max=9,
        help="PNG zlib level 0-9 (lower is faster, larger).",
    ),
    alpha: Alpha = typer.Option(
        Alpha.drop, "--alpha",
        help="An input's alpha channel: drop (maps are opaque) or filter (convolve it as a channel).",
    ),
    montage: str | None = typer.Option(
        None, "--montage", help="Also write all feature maps as one labelled contact sheet (PNG)."
    ),
    method: str = typer.Option(
        "auto", "--method", help="Strategy: auto, or a name (direct, separable, fft, gemm, …)."
    ),
    dtype: str = typer.Option("float32", "--dtype", help="Compute type: float32 or float64."),
    max_pixels: int | None = typer.Option(
        None, "--max-pixels",
        help="Refuse images with more pixels (checked before decoding). Default: Pillow's limit; 0: none.",
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite existing output files (never an input)."),
    verify: bool = typer.Option(
        False, "--verify", help="Recompute with scipy.signal and print the max abs difference."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Print nothing but errors."),
) -> None:
    from convcli import imageio
    from convcli.display import parse_scale
    from convcli.presets import load_bank

    if bit_depth not in (None, 8, 16):
        raise OptionError(f"`bit-depth` must be 8 or 16, got {bit_depth}")
    scale_text = scale.strip().lower()
    if scale_text != "raw":
        scale_text = parse_scale(scale_text)
    settings = _Settings(
        geometry=_geometry(stride, padding, border, dilation, channels.value, flip, bias,
                           output_padding, transpose, method, dtype),
        transpose=transpose, reduce=reduce.value, scale=scale_text,
        out_format=out_format.value if out_format else None, output=output, force=force,
        verify=verify, quiet=quiet, as_json=as_json,
        compress_level=imageio.DEFAULT_PNG_LEVEL if compress_level is None else compress_level,
        bit_depth=bit_depth, alpha=alpha.value,
        max_pixels=(None if max_pixels == 0 else max_pixels) if max_pixels is not None
        else imageio.DEFAULT_MAX_PIXELS,
        montage=montage, specs=tuple(kernel),
    )
    bank = load_bank(kernel)
    entries = _expand_inputs(inputs)
    sources = [source for source, _ in entries]
    if sources.count("-") > 1:
        raise OptionError("stdin (-) can be read only once")
    settings.batch = len(entries) > 1
    _check_output(settings, settings.batch)
    inputs_seen = [source for source in sources if source != "-"]
    records: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    progress = _progress(len(entries), _wants_progress(sources, quiet))
    try:
        for source, problem in entries:
            try:
                if problem is not None:
                    raise problem
                records.append(_run_one(source, bank, settings, inputs_seen))
            except OptionError:
                raise  # the same for every input: stop the batch
            except (ConvcliError, MemoryError) as exc:
                if isinstance(exc, MemoryError):
                    exc = ImageError(f"{source}: not enough memory to filter it")
                if not settings.batch and not as_json:
                    raise exc from None
                failures.append({"input": source, "error": str(exc)})
                err(f"convcli: error: {exc}")
            if progress is not None:
                progress.advance(0)
    finally:
        if progress is not None:
            progress.stop()
    if settings.batch and not quiet:
        err(f"{len(records)} of {len(entries)} inputs done, {len(failures)} failed")
    if as_json:
        sys.stdout.write(json.dumps(_summary(bank, sources, records, failures), indent=2) + "\n")
        sys.stdout.flush()  # a closed pipe fails here, inside the error translation
    if failures:
        raise typer.Exit(1)


apply.__doc__ = APPLY_HELP
