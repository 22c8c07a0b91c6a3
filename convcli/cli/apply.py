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
    jpeg = "jpeg"
    webp = "webp"
    npy = "npy"
    npz = "npz"


class Alpha(StrEnum):
    """What happens to an input's alpha channel."""

    keep = "keep"
    drop = "drop"
    channel = "channel"
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
    """Parsed, validated options shared by every input of a batch (the CLI's side of a run)."""

    output: str | None
    out_format: str | None
    force: bool
    quiet: bool
    as_json: bool
    montage: str | None = None
    batch: bool = False
    written: set[str] = field(default_factory=set)
    frames: str = "all"


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


def _geometry(stride: str, padding: str, border: str | None, dilation: str, channels: str, flip: bool,
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
        if border is not None and border.strip().lower() != "zero":
            raise OptionError("`--border` does not apply to --transpose (its padding crops the output)")
    else:
        if out_pads != (0, 0):
            raise OptionError("`--output-padding` only applies with --transpose")
        options["border"] = parse_border("reflect" if border is None else border)
    if dtype not in ("float32", "float64"):
        raise OptionError(f"`dtype` must be float32 or float64, got {dtype!r}")
    return options


def _check_output(settings: _Settings, batch: bool) -> None:
    """Validate ``-o``/``-f``/``--montage`` before any image is read (validate first, compute second)."""
    from convcli.imageio import format_from_suffix
    from convcli.job import is_directory_target

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
    if is_directory_target(output):
        if not Path(output).is_dir():
            raise OptionError(f"output directory does not exist: {output}")
        return
    if batch:
        raise OptionError(f"several inputs need -o DIR (an existing directory), not a file: {output}")
    suffix = Path(output).suffix
    suffix_format = ("zarr" if suffix.lower() == ".zarr" else format_from_suffix(output)) if suffix else None
    if settings.out_format and suffix_format and suffix_format != settings.out_format:
        raise OptionError(
            f"-o {output} names a {suffix_format} file but -f asks for {settings.out_format}; "
            "make them agree (or drop one)"
        )
    if not settings.out_format and suffix and suffix_format is None:
        raise OptionError(
            f"-o {output}: unknown output suffix {suffix!r}; use .png, .jpg, .webp, .tif/.tiff, .npy, "
            ".npz or .zarr, or name the format with -f"
        )
    parent = Path(output).parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise OptionError(f"-o {output}: output directory {parent} {what}")


def _destination(settings: _Settings, source: str, inputs_seen: list[str]) -> Any:
    """Where one input's outputs go (``--montage`` per input in a batch: ``sheet.<stem>.png``)."""
    from convcli.job import Destination

    montage = settings.montage
    if montage and settings.batch:
        target = Path(montage)
        stem = "stdin" if source == "-" else Path(source).stem
        montage = str(target.with_name(f"{target.stem}.{stem}{target.suffix or '.png'}"))
    return Destination(output=settings.output, force=settings.force, protect=tuple(inputs_seen),
                       montage=montage)


def _claim(settings: _Settings, paths: list[str]) -> None:
    """Refuse a path this run already wrote for another map or input (checked before writing)."""
    from convcli.errors import OutputError

    seen: set[str] = set()
    for target in paths:
        if target == "-":
            continue
        key = os.path.abspath(target)
        if key in settings.written or key in seen:
            raise OutputError(
                f"{target}: already written by this run for another input or map; "
                "use -o DIR with distinct input names"
            )
        seen.add(key)


def _frame_sources(job: Any, source: str, settings: _Settings) -> list[tuple[Any, int | None, int]] | None:
    """The frames of a multi-frame input (GIF/WebP/APNG, multi-page TIFF) as in-memory sources,
    each with its index and the last index written; None for a one-frame input (streamed)."""
    from convcli import imageio
    from convcli.pipeline.sources import PillowSource

    if source == "-" or imageio.frame_count(source) <= 1:
        if settings.frames not in ("all", "0", "0-0") and source != "-":
            imageio.select_frames(settings.frames, 1, source)  # the error names the file
        return None
    loaded = imageio.read_frames(source, settings.frames, max_pixels=job.max_pixels)
    last = loaded[-1].frame or 0
    return [(PillowSource(frame), frame.frame, last) for frame in loaded]


_ONE_FILE_FORMATS = ("tiff", "webp", "npy")  # formats that hold every frame of an input in one file


def _run_frames_into_one_file(job: Any, source: str, frames: list, settings: _Settings,
                              destination: Any) -> dict[str, Any]:
    """A multi-frame input into one file per map: a TIFF page, an animated WebP frame or a
    ``(T, H', W', N)`` npy slice per frame (the frames' arrays collected, then written)."""
    import dataclasses

    import numpy as np

    from convcli import imageio
    from convcli.job import output_format, planned_outputs, run

    collected: list[tuple[str, Any]] = []
    collecting = dataclasses.replace(destination, collect=collected)
    records = []
    for index, (opened, frame, _) in enumerate(frames):
        try:
            if index == 0:
                planned = planned_outputs(job, opened, collecting)
                _claim(settings, planned)
                for target in planned:
                    if target != "-":
                        imageio.check_output_target(target, force=destination.force,
                                                    protect=list(destination.protect))
            records.append(dict(run(job, opened, collecting), frame=frame))
        finally:
            opened.close()
    fmt = output_format(job, destination, frames[0][0].mode)
    by_target: dict[str, list[Any]] = {}
    for target, array in collected:
        by_target.setdefault(target, []).append(array)
    metadata = dict(getattr(frames[0][0], "metadata", {}) or {})
    notes: list[str] = []
    outputs = []
    for target, arrays in by_target.items():
        if len({a.shape for a in arrays}) != 1 and fmt != "tiff":
            raise OptionError(f"{source}: frames of different sizes need -f tiff or one file per frame")
        if fmt == "tiff":
            data = imageio.encode_tiff_pages(arrays, metadata=metadata, strip=job.strip)
        elif fmt == "webp":
            data = imageio.encode_webp(arrays, quality=job.quality, lossless=job.lossless,
                                       metadata=metadata, strip=job.strip, notes=notes)
        else:
            data = imageio.encode_npy(np.stack(arrays))
        imageio.write_output(target, data, force=destination.force, protect=list(destination.protect))
        outputs.append({"path": target, "format": fmt, "shape": [len(arrays), *arrays[0].shape],
                        "frames": [r["frame"] for r in records]})
    record = dict(records[0], outputs=outputs, frames=records)
    for note in sorted(set(notes + [n for r in records for n in r.get("notes", [])])):
        if not settings.quiet:
            err(f"note: {note}")
    for output in outputs:
        if output["path"] != "-":
            settings.written.add(os.path.abspath(output["path"]))
        _say_written(settings, output["path"], output["shape"][1:])
    return record


def _run_one(job: Any, source: str, settings: _Settings, inputs_seen: list[str]) -> dict[str, Any]:
    """Run the job on one input (streaming; a multi-frame input frame by frame) and report it."""
    import dataclasses

    from convcli import imageio
    from convcli.job import output_format, planned_outputs, run
    from convcli.pipeline.sources import open_source

    destination = _destination(settings, source, inputs_seen)
    frames = _frame_sources(job, source, settings)
    if frames is not None and output_format(job, destination, frames[0][0].mode) in _ONE_FILE_FORMATS:
        return _run_frames_into_one_file(job, source, frames, settings, destination)
    if frames is None:
        opened = open_source(source, max_pixels=job.max_pixels)
        frames = [(opened, None, 0)]
    elif destination.output == "-":
        raise OptionError(f"{source}: {len(frames)} frames go to stdout only as -f npy; or use -o DIR")
    elif destination.output is not None and not Path(destination.output).is_dir() \
            and not destination.output.endswith(("/", "\\")):
        # -o FILE with several frames: FILE's stem, one file per frame beside it
        target = Path(destination.output)
        destination = dataclasses.replace(destination, output=str(target.parent) + os.sep,
                                          stem=target.stem)
    records = []
    for opened, index, last in frames:
        frame_destination = destination if index is None else dataclasses.replace(
            destination, stem=imageio.frame_stem(destination.stem or opened.stem, index, last))
        try:
            planned = planned_outputs(job, opened, frame_destination)
            _claim(settings, planned)
            records.append(run(job, opened, frame_destination))
        finally:
            opened.close()
    record = records[0]
    if len(records) > 1:
        record = dict(record, frames=[dict(r, frame=i) for r, (_, i, _) in zip(records, frames)],
                      outputs=[output for r in records for output in r["outputs"]])
    for note in record.get("notes", []):
        if not settings.quiet:
            err(f"note: {note}")
    for output in record["outputs"]:
        if output["path"] != "-":
            settings.written.add(os.path.abspath(output["path"]))
        _say_written(settings, output["path"], output["shape"])
    if "verify" in record and not settings.quiet:
        check = record["verify"]
        name = "stdin" if source == "-" else source
        err(f"verify {name}: max |convcli − scipy.signal| = {check['max_abs_difference']:.3g} "
            f"(relative {check['relative']:.3g}) ok")
    return record


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
    border: str | None = typer.Option(
        None, "--border",
        help="What fills the padding: reflect (default: a blur keeps a flat image flat, as OpenCV, "
        "scipy.ndimage, libvips) | zero (PyTorch) | constant:V | symmetric | replicate | wrap. "
        "Not with --transpose.",
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
        help="png | tiff | jpeg | webp | npy (exact float32 (H',W',N)) | npz (one array per map). "
        "Default: from the output suffix, else png (npy for .npy input).",
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
        Alpha.keep, "--alpha",
        help="An input's alpha: keep (premultiplied filtering, hidden colour never bleeds in; image "
        "kernels keep a filtered alpha, feature maps are opaque) | drop (flatten over black or "
        "--background) | channel (alias filter: alpha filtered as a plain channel).",
    ),
    background: str | None = typer.Option(
        None, "--background",
        help="With --alpha drop: the colour to flatten over (name, #RRGGBB, gray level, R,G,B).",
    ),
    quality: int = typer.Option(90, "--quality", min=1, max=100,
                                help="JPEG/WebP quality 1-100 (JPEG: no chroma subsampling from 90)."),
    lossless: bool = typer.Option(False, "--lossless",
                                  help="Lossless WebP (keeps the colour under transparent pixels)."),
    strip: bool = typer.Option(
        False, "--strip",
        help="Write no metadata. By default the ICC profile, EXIF (Orientation 1), dpi and PNG text "
        "are carried over.",
    ),
    frames: str = typer.Option(
        "all", "--frames",
        help="Frames of an animated GIF/WebP or pages of a TIFF: all | N | A-B (from 0). Each frame "
        "is written as <stem>.fNNN.<kernel>.<ext>.",
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
    from convcli.job import Job
    from convcli.presets import load_bank

    if bit_depth not in (None, 8, 16):
        raise OptionError(f"`bit-depth` must be 8 or 16, got {bit_depth}")
    scale_text = scale.strip().lower()
    if scale_text != "raw":
        scale_text = parse_scale(scale_text)
    settings = _Settings(
        out_format=out_format.value if out_format else None, output=output, force=force,
        quiet=quiet, as_json=as_json, montage=montage,
    )
    geometry = _geometry(stride, padding, border, dilation, channels.value, flip, bias,
                         output_padding, transpose, method, dtype)
    if background is not None:
        from convcli.alpha import parse_color

        parse_color(background)
    imageio.parse_frames(frames)
    settings.frames = frames
    bank = load_bank(kernel)
    job = Job(
        weights=bank.stack(), labels=tuple(bank.labels), bank_name=bank.name, geometry=geometry,
        display_hint=bank.display, transpose=transpose, reduce=reduce.value, scale=scale_text,
        out_format=settings.out_format, bit_depth=bit_depth,
        compress_level=imageio.DEFAULT_PNG_LEVEL if compress_level is None else compress_level,
        alpha=alpha.value, background=background, quality=quality, lossless=lossless, strip=strip,
        max_pixels=(None if max_pixels == 0 else max_pixels) if max_pixels is not None
        else imageio.DEFAULT_MAX_PIXELS,
        verify=verify, map_stats=as_json, spec_text=" ".join(f"-k {spec}" for spec in kernel) or "bank",
    )
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
                records.append(_run_one(job, source, settings, inputs_seen))
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
