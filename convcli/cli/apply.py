"""``convcli apply``: filter images with a kernel bank and save the feature maps.

The command is a thin layer: it parses options, reads each input
(:mod:`convcli.imageio`), resolves the bank (:mod:`convcli.presets`), calls
the core (:func:`convcli.conv2d` / :func:`convcli.conv_transpose2d`),
reduces and groups the maps (:mod:`convcli.maps`), maps floats to pixels
(:mod:`convcli.display`) and writes every file atomically. numpy, Pillow and
scipy are imported inside the command only.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from convcli.cli import err, write_json
from convcli.cli._complete import complete_border, complete_kernel, complete_scale
from convcli.errors import ConvcliError, ImageError, OptionError

__all__ = ["apply"]

#: PNG zlib level when --compress-level is not given (convcli.imageio.DEFAULT_PNG_LEVEL; see png.py).
PNG_LEVEL = 4


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
    zarr = "zarr"


class Activation(StrEnum):
    """What follows the bias."""

    none = "none"
    relu = "relu"


class Alpha(StrEnum):
    """What happens to an input's alpha channel."""

    keep = "keep"
    drop = "drop"
    channel = "channel"
    filter = "filter"


APPLY_HELP = """Filter images with a kernel bank and save the feature maps.

\b
Examples:
  convcli apply photo.png -k sobel      # photo.sobel-x.png, photo.sobel-y.png
  convcli apply photo.png -k sobel --reduce magnitude -o edges.png
  convcli apply photo.png -k gaussian:sigma=2 -s 2 -o small.png
  convcli apply photo.png -k edge="1,0,-1;2,0,-2;1,0,-1" --channels gray
  convcli apply a.png -k gaussian -f npy -o - | convcli apply - -k sobel
  convcli apply photos/ -k kirsch --reduce max -o out/ --skip-existing
  convcli apply photo.png -k net.safetensors:conv1.weight --normalize imagenet

\b
The operation is CNN convolution (cross-correlation, no flip; --flip for
true convolution), exactly as PyTorch's conv2d / conv_transpose2d. Values
are read in their native range (0-255, 0-65535) and computed in float32;
npy/npz outputs hold the exact float32 (H', W', N) result, image outputs
are mapped to pixels by --scale. Sizes are H×W.

\b
Output names: <stem>.<label><ext>, one file per map (one npy/npz per
input). Every name of a batch is decided before the first write: two
inputs that would share a name both keep their suffix (a.png.sobel-x.png,
a.jpg.sobel-x.png); files this run writes are not taken as its inputs.
Labels: preset names, -k NAME=SPEC, or k-xxxx (a hash) for inline weights.
Files are written atomically; existing files need --force.

\b
A layer of a model file (-k FILE:NAME: .safetensors, .npz, .pt/.pth,
.onnx; list them with `convcli kernels show FILE`) is in PyTorch layout
(F, C/G, kh, kw) and sums over channels in G groups (G = C / (C/G), or
--groups); its bias is added. Its padding defaults to PyTorch's 0 and its
border to zero; an ONNX node also brings its strides, pads, dilations,
group and Conv/ConvTranspose. Options given explicitly win (with a note).
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
    skip_existing: bool = False
    frames: str = "all"
    named_inputs: tuple[str, ...] = ()
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
        if Path(output).exists() and not Path(output).is_dir():
            raise OptionError(f"-o {output}: exists and is not a directory")
        return  # an existing directory, or DIR/ (created just before the first write)
    if batch:
        raise OptionError(f"several inputs need a directory: -o {output}/ (created if missing), "
                          f"not the file {output}")
    suffix = Path(output).suffix
    suffix_format = ("zarr" if suffix.lower() == ".zarr" else format_from_suffix(output)) if suffix else None
    if settings.out_format and suffix_format and suffix_format != settings.out_format:
        raise OptionError(
            f"-o {output} names a {suffix_format} file but -f asks for {settings.out_format}; "
            "make them agree (or drop one)"
        )
    if not settings.out_format and suffix and suffix_format is None:
        raise OptionError(
            f"-o {output}: unknown output suffix {suffix!r}; use .png, .jpg, .webp, .tif/.tiff, .npy, .npz "
            "or .zarr, "
            "or name the format with -f"
        )
    parent = Path(output).parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise OptionError(f"-o {output}: output directory {parent} {what}")


def _destination(settings: _Settings, source: str, inputs_seen: list[str], plan: Any = None) -> Any:
    """Where one input's outputs go (``--montage`` per input in a batch: ``sheet.<stem>.png``).

    ``plan`` (a :class:`convcli.cli.naming.Planned`) gives the stem and montage
    decided for the whole batch.
    """
    from convcli.job import Destination

    if plan is not None:
        return Destination(output=settings.output, stem=plan.stem, force=settings.force,
                           protect=tuple(inputs_seen), montage=plan.montage or (
                               None if settings.batch else settings.montage))
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


def _run_one(job_for: Any, source: str, settings: _Settings, inputs_seen: list[str],
             plan: Any = None, on_band: Any = None) -> dict[str, Any]:
    """Run the job (``job_for(opened source)``) on one input and report it (streaming; a
    multi-frame input frame by frame).

    With ``--skip-existing`` an input whose outputs all exist is not run:
    the record is then ``{"skipped": reason}``.
    """
    import dataclasses

    from convcli import imageio
    from convcli.job import output_format, planned_outputs, run
    from convcli.pipeline.sources import open_source

    destination = _destination(settings, source, inputs_seen, plan)
    frames = _frame_sources(job_for, source, settings)
    if frames is not None:
        job = job_for(frames[0][0])
        if output_format(job, destination, frames[0][0].mode) in _ONE_FILE_FORMATS:
            return _run_frames_into_one_file(job, source, frames, settings, destination)
    if frames is None:
        opened = open_source(source, max_pixels=job_for.max_pixels,
                             streamed_max_pixels=job_for.streamed_max_pixels)
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
            job = job_for(opened)
            planned = planned_outputs(job, opened, frame_destination)
            files = [path for path in planned if path != "-"]
            if settings.skip_existing and files and all(Path(path).exists() for path in files):
                if index is None:
                    return {"skipped": f"{source}: skipped, its outputs exist (--skip-existing)"}
                continue
            _claim(settings, planned)
            records.append(run(job, opened, frame_destination, progress=on_band))
        finally:
            opened.close()
    if not records:
        return {"skipped": f"{source}: skipped, its outputs exist (--skip-existing)"}
    record = records[0]
    if len(records) > 1:
        record = dict(record, frames=[dict(r, frame=i) for r, (_, i, _) in zip(records, frames)],
                      outputs=[output for r in records for output in r["outputs"]])
    _report(settings, source, record)
    return record


def _report(settings: _Settings, source: str, record: dict[str, Any]) -> None:
    """Announce what one input wrote (and remember it)."""
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


def _outcomes(job_for: Any, entries: list[tuple[str, Any]], plans: list[Any], settings: _Settings,
              inputs_seen: list[str], jobs: int, scheduler: str | None,
              chunks: tuple[int, int | None] | None) -> Iterator[tuple[int, tuple[str, Any], Any, Any]]:
    """``(index, (source, problem), plan, record or None)`` per input; None: the caller runs it.

    Sequentially every entry, in order. With ``--jobs``/``--scheduler`` the
    one-frame inputs of a job that does not depend on the input (no model
    layer, no ``--groups``) go to :func:`convcli.distributed.execute` and
    come back as they finish (reported here; an error as the problem); the
    others (multi-frame, fitted jobs, stdin, failed or skipped entries) are
    left to the caller, first.
    """
    if jobs == 1 and scheduler is None:
        for index, (entry, plan) in enumerate(zip(entries, plans)):
            yield index, entry, plan, None
        return
    from convcli import distributed, imageio

    plain = job_for.bank.layer is None and job_for.groups is None
    runnable = []
    for index, ((source, problem), plan) in enumerate(zip(entries, plans)):
        single = False
        if plain and problem is None and source != "-" and not (plan is not None and plan.skip):
            try:
                single = source.lower().endswith((".npy", ".zarr")) or imageio.frame_count(source) <= 1
            except (ConvcliError, OSError):
                single = False  # the caller reports it
        if single:
            destination = _destination(settings, source, inputs_seen, plan)
            runnable.append(distributed.Task(index, source, destination))
        else:
            yield index, (source, problem), plan, None
    for outcome in distributed.execute(job_for.job, runnable, jobs=jobs, scheduler=scheduler, chunks=chunks,
                                       skip_existing=settings.skip_existing):
        index, source = outcome.task.index, outcome.task.source
        if outcome.error is None and not outcome.record.get("skipped"):
            _report(settings, source, outcome.record)
        yield index, (source, outcome.error), plans[index], outcome.record


def _memory_budgets() -> dict[str, int]:
    """``CONVCLI_BAND_BYTES`` / ``CONVCLI_HOLD_BYTES`` (bytes, e.g. ``64M``) override the budgets."""
    budgets = {}
    for key, variable in (("band_bytes", "CONVCLI_BAND_BYTES"), ("hold_bytes", "CONVCLI_HOLD_BYTES")):
        text = os.environ.get(variable, "").strip()
        if not text:
            continue
        units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
        factor = units.get(text[-1].lower(), 1)
        number = text[:-1] if factor != 1 else text
        try:
            value = int(float(number) * factor)
        except ValueError:
            value = -1
        if value < 0:
            raise OptionError(f"{variable} must be a number of bytes (e.g. 64M), got {text!r}")
        budgets[key] = value
    return budgets


def _say_written(settings: _Settings, target: str, shape: Any) -> None:
    if settings.quiet or target == "-":
        return
    rows, cols = shape[:2]
    channels = shape[2] if len(shape) > 2 else 1
    err(f"wrote {target} ({rows}×{cols}, {channels} channel{'s' if channels != 1 else ''})")


_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".npy"}


def _expand_inputs(inputs: list[str]) -> list[tuple[str, ConvcliError | None]]:
    """Directories become their image files and zarr arrays (sorted); other paths stay as given.

    A directory without image files becomes one failed entry ``(dir, ImageError)``
    so that a batch reports it and goes on.
    """
    from convcli.pipeline.sources import is_zarr_array

    expanded: list[tuple[str, ConvcliError | None]] = []
    for source in inputs:
        path = Path(source)
        if source != "-" and path.is_dir() and not is_zarr_array(path):
            files = sorted(str(p) for p in path.iterdir()
                           if (p.suffix.lower() in _IMAGE_SUFFIXES and p.is_file()) or is_zarr_array(p))
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
    from convcli.pipeline.sources import read_shape

    try:
        rows, cols = read_shape(sources[0])
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
             failures: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``--json`` document (``extra``: normalize, activation, groups, layer)."""
    return {
        **(extra or {}),
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


def _explicit(context: Any, names: set[str]) -> set[str]:
    """The options among ``names`` that the user typed (not left at their defaults)."""
    if context is None:
        return set()
    sources = {name: context.get_parameter_source(name) for name in names}
    return {name for name, source in sources.items()
            if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")}


def _given_value(key: str, geometry: dict[str, Any], transpose: bool) -> Any:
    """The parsed value of an explicit option, as :func:`convcli.layers.plan_layer` takes it."""
    if key == "transpose":
        return transpose
    if key == "border":
        return geometry.get("border", "zero")
    if key == "output_padding":
        return geometry.get("output_padding", (0, 0))
    return geometry[key]


class _JobFactory:
    """The job for one opened input: the shared job, or one fitted to the input's channels and
    size for a model layer (groups, ONNX SAME pads) or ``--groups`` (a dense block-diagonal bank
    for the ``sum`` channel mode, :func:`convcli.layers.expand_groups`)."""

    def __init__(self, job: Any, bank: Any, given: dict[str, Any], groups: int | None,
                 quiet: bool) -> None:
        self.job, self.bank, self.given, self.groups, self.quiet = job, bank, given, groups, quiet
        self.max_pixels = job.max_pixels
        self.streamed_max_pixels = job.streamed_max_pixels
        self.layer_record: dict[str, Any] | None = None
        self._noted = False

    def _channels_used(self, source: Any) -> int:
        names = tuple(source.channel_names)
        has_alpha = len(names) in (2, 4) and names[-1] == "A"
        # alpha is filtered as a channel only with --alpha channel (filter); keep and drop feed colour
        return source.shape[2] - (1 if has_alpha and self.job.alpha not in ("channel", "filter") else 0)

    def __call__(self, source: Any) -> Any:
        import dataclasses

        from convcli.layers import dense_grouped_bank, expand_groups, plan_layer

        if self.bank.layer is None and self.groups is None:
            return self.job
        channels = self._channels_used(source)
        geometry = dict(self.job.geometry, channels="sum")
        if self.bank.layer is None:
            try:
                weights = dense_grouped_bank(self.bank.stack(), self.groups, channels)
            except ConvcliError as exc:
                raise type(exc)(f"{source.name}: {exc}") from None
            return dataclasses.replace(self.job, weights=weights, geometry=geometry)
        plan = plan_layer(self.bank, (*source.shape[:2], channels), self.given)
        if plan.note and not self._noted and not self.quiet:
            err(f"note: {plan.note}")
        self._noted = True
        # the layer's own values and the explicit options; PyTorch's defaults for the rest
        geometry = {key: geometry[key] for key in ("channels", "flip", "method", "dtype")}
        geometry.update({key: value for key, value in plan.options.items() if key != "groups"})
        geometry.setdefault("stride", (1, 1))
        geometry.setdefault("dilation", (1, 1))
        geometry.setdefault("padding", 0 if plan.transposed else "valid")
        geometry.setdefault("bias", 0.0)
        if plan.transposed:
            geometry.pop("border", None)
            geometry.setdefault("output_padding", (0, 0))
        else:
            geometry.pop("output_padding", None)
            geometry.setdefault("border", "zero")
        weights = plan.weights if plan.groups == 1 else expand_groups(plan.weights, plan.groups)
        layer = self.bank.layer
        self.layer_record = {
            "source": layer.source, "name": layer.name, "layout": "pytorch",
            "shape": list(layer.shape), "groups": plan.groups, "transposed": plan.transposed,
            "bias_from_file": layer.bias is not None and "bias" not in self.given,
            "note": plan.note,
        }
        return dataclasses.replace(self.job, weights=weights, labels=tuple(plan.labels),
                                   geometry=geometry, transpose=plan.transposed)


def apply(
    ctx: typer.Context,
    inputs: list[str] = typer.Argument(
        ..., metavar="INPUT...",
        help="Image files (PNG, JPEG, TIFF/BigTIFF, BMP, WebP, GIF), .npy arrays (H, W[, C]), "
        ".zarr arrays, directories of images, or - for stdin.",
    ),
    kernel: list[str] = typer.Option(
        ..., "-k", "--kernel", metavar="SPEC", autocompletion=complete_kernel,
        help="Kernel spec, repeatable (all form one bank): a file (.npy, text matrix, .toml bank), "
        "a model layer FILE:NAME (.safetensors, .npz, .pt/.pth, .onnx), NAME=SPEC, a preset "
        "(sobel, gaussian:sigma=2, …; convcli kernels list) or inline weights '1,0,-1;2,0,-2;1,0,-1'.",
    ),
    stride: str = typer.Option("1", "-s", "--stride", metavar="N|ROWS,COLS", help="Stride."),
    padding: str = typer.Option(
        "same", "-p", "--padding", metavar="PAD",
        help="valid | same (TF/ONNX SAME: output = ceil(H/s)) | full | N | PH,PW | T,B,L,R.",
    ),
    border: str | None = typer.Option(
        None, "--border", metavar="BORDER", autocompletion=complete_border,
        help="What fills the padding: reflect (a blur keeps a flat image flat, as OpenCV, "
        "scipy.ndimage, libvips) | zero (PyTorch) | constant:V | symmetric | replicate | wrap.  "
        "[default: reflect; none with --transpose]",
    ),
    dilation: str = typer.Option("1", "-d", "--dilation", metavar="N|ROWS,COLS", help="Dilation."),
    channels: Channels = typer.Option(
        Channels.depthwise, "--channels",
        help="depthwise: each kernel on each channel (a blur keeps colour); sum: each kernel sums "
        "over channels (PyTorch groups=1); gray: luminance first.",
    ),
    flip: bool = typer.Option(False, "--flip", help="Rotate kernels 180° (true convolution)."),
    bias: str = typer.Option(
        "0", "--bias", metavar="V|V1,V2,…", help="Added to every output: one value, or one per kernel."
    ),
    transpose: bool = typer.Option(
        False, "--transpose",
        help="Transposed convolution (PyTorch conv_transpose2d): upsamples by the stride.",
    ),
    output_padding: str = typer.Option(
        "0", "--output-padding", metavar="N|ROWS,COLS",
        help="With --transpose: extra rows,cols at the bottom/right (< stride).",
    ),
    reduce: Reduce = typer.Option(
        Reduce.none, "--reduce",
        help="Combine the bank's maps into one: magnitude (sqrt of sum of squares; sobel), max "
        "(compass banks), min, sum.",
    ),
    output: str | None = typer.Option(
        None, "-o", "--output", metavar="FILE|DIR/|-",
        help="A file (several maps: FILE.sobel-x.png, …; it needs a suffix), a directory (an "
        "existing one, or DIR/, created), or - for stdout.  [default: <stem>.<label><ext> in the "
        "current directory]",
    ),
    out_format: Format | None = typer.Option(
        None, "-f", "--format",
        help="png | tiff | jpeg | webp | npy (exact float32 (H',W',N)) | npz (one array per map) | zarr "
        "(like npy, a zarr v3 directory).  "
        "[default: "
        "from the -o suffix, else png; npy for .npy input]",
    ),
    scale: str = typer.Option(
        "auto", "--scale", metavar="SCALE", autocompletion=complete_scale,
        help="Float maps to pixels: auto (keeps a blur's range; edges as |x| so negatives stay "
        "visible; preset hints) | clip | abs | minmax | offset:V | raw (float32 TIFF).",
    ),
    bit_depth: int | None = typer.Option(
        None, "--bit-depth", metavar="8|16",
        help="Bits per sample of image outputs. A depth other than an 8/16-bit input's rescales "
        "0-255 ↔ 0-65535 (×/÷ 257), so the picture looks the same.  [default: 16 for 16-bit "
        "input, else 8]",
    ),
    compress_level: int | None = typer.Option(
        None, "--compress-level", min=0, max=9, metavar="0-9",
        help=f"PNG zlib level (lower is faster, larger).  [default: {PNG_LEVEL}]",
    ),
    alpha: Alpha = typer.Option(
        Alpha.keep, "--alpha",
        help="An input's alpha: keep (premultiplied filtering, hidden colour never bleeds in; image "
        "kernels keep a filtered alpha, feature maps are opaque) | drop (flatten over black or "
        "--background) | channel (alias filter: alpha filtered as a plain channel).",
    ),
    background: str | None = typer.Option(
        None, "--background", metavar="COLOR",
        help="With --alpha drop: the colour to flatten over (name, #RRGGBB, gray level, R,G,B).  "
        "[default: black]",
    ),
    quality: int = typer.Option(90, "--quality", min=1, max=100, metavar="1-100",
                                help="JPEG/WebP quality (JPEG: no chroma subsampling from 90)."),
    lossless: bool = typer.Option(False, "--lossless",
                                  help="Lossless WebP (keeps the colour under transparent pixels)."),
    strip: bool = typer.Option(
        False, "--strip",
        help="Write no metadata. By default the ICC profile, EXIF (Orientation 1), dpi and PNG text "
        "are carried over.",
    ),
    frames: str = typer.Option(
        "all", "--frames", metavar="all|N|A-B",
        help="Frames of an animated GIF/WebP or pages of a TIFF (from 0). TIFF/WebP/npy outputs hold "
        "them all; other formats get <stem>.fNNN.<kernel>.<ext> per frame.",
    ),
    groups: int | None = typer.Option(
        None, "--groups", min=1, metavar="G",
        help="PyTorch groups G: channels and kernels split into G groups, each kernel summing over "
        "its group's C/G channels (replaces --channels).  [default: none; a model layer's is inferred]",
    ),
    normalize: str | None = typer.Option(
        None, "--normalize", metavar="MEAN;STD|imagenet",
        help="Normalise the input as a network was trained: (x/255 − mean)/std per channel "
        "(÷65535 for 16-bit, float as is), e.g. imagenet = 0.485,0.456,0.406;0.229,0.224,0.225.  "
        "[default: none]",
    ),
    activation: Activation = typer.Option(
        Activation.none, "--activation", help="After the bias: none or relu (max(x, 0))."
    ),
    montage: str | None = typer.Option(
        None, "--montage", metavar="FILE.png",
        help="Also write all feature maps as one labelled contact sheet (in a batch "
        "FILE.<stem>.png per input).  [default: none]",
    ),
    method: str = typer.Option(
        "auto", "--method", metavar="NAME",
        help="Strategy: auto, or a name (direct, separable, fft, gemm, …).",
    ),
    dtype: str = typer.Option("float32", "--dtype", metavar="float32|float64", help="Compute type."),
    max_pixels: int | None = typer.Option(
        None, "--max-pixels", metavar="N",
        help="Refuse images with more pixels (checked before decoding); 0: no limit.  "
        "[default: Pillow's limit, 89478485, for formats decoded whole; none for TIFF, npy and "
        "zarr, which stream]",
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite existing output files (never an input)."),
    skip_existing: bool = typer.Option(
        False, "--skip-existing", help="Skip inputs whose outputs all exist (resume a batch)."
    ),
    verify: bool = typer.Option(
        False, "--verify", help="Recompute with scipy.signal and print the max abs difference."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print one line of JSON on stdout: the summary, one record per input."
    ),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Print nothing but errors."),
    jobs: int = typer.Option(
        1, "-j", "--jobs", metavar="N", help="Filter a batch with N worker processes (0: one per core).",
    ),
    scheduler: str | None = typer.Option(
        None, "--scheduler", metavar="ADDRESS|processes|threads",
        help="Run on Dask (pip install 'convcli[dask]'): a scheduler address (tcp://HOST:PORT) or "
        "Dask's local processes/threads. One zarr/TIFF input with a .zarr output is filtered in chunks.  "
        "[default: none, no Dask]",
    ),
    chunks: str | None = typer.Option(
        None, "--chunks", metavar="ROWS[,COLS]",
        help="With --scheduler: chunk size of a chunked .zarr output.  [default: the band height, "
        "256 columns]",
    ),
) -> None:
    from convcli import imageio
    from convcli.cli.naming import load_labelled_bank
    from convcli.display import parse_scale
    from convcli.job import Job, describe_error

    if bit_depth not in (None, 8, 16):
        raise OptionError(f"`bit-depth` must be 8 or 16, got {bit_depth}")
    scale_text = scale.strip().lower()
    if scale_text != "raw":
        try:
            scale_text = parse_scale(scale_text)
        except OptionError:
            raise OptionError(f"`scale` must be auto, clip, abs, minmax, raw or offset:V (V a number), "
                              f"got {scale!r}") from None
    settings = _Settings(
        out_format=out_format.value if out_format else None, output=output, force=force,
        quiet=quiet, as_json=as_json, montage=montage, skip_existing=skip_existing,
        named_inputs=tuple(inputs),
    )
    bank = load_labelled_bank(kernel)
    given = _explicit(ctx, {"stride", "padding", "dilation", "output_padding", "bias", "border",
                       "transpose", "channels"})
    if bank.layer is not None and "transpose" not in given:
        transpose = bank.transposed
    geometry = _geometry(stride, padding, border, dilation, channels.value, flip, bias,
                         output_padding, transpose, method, dtype)
    if (bank.layer is not None or groups is not None) and "channels" in given \
            and channels.value != "sum":
        what = "a model layer" if bank.layer is not None else "--groups"
        raise OptionError(f"--channels {channels.value} does not apply to {what}: its kernels sum over "
                          "their group's channels (set --groups)")
    if activation.value != "none" and reduce.value != "none":
        raise OptionError("--activation applies to the maps, --reduce would combine them first; "
                          "use one of them (or chain two runs through -f npy)")
    normalization = None
    if normalize is not None:
        from convcli.layers import parse_normalize

        normalization = parse_normalize(normalize)
    if background is not None:
        from convcli.alpha import parse_color

        parse_color(background)
    imageio.parse_frames(frames)
    settings.frames = frames
    job = Job(
        weights=bank.stack(), labels=tuple(bank.labels), bank_name=bank.name, geometry=geometry,
        display_hint=bank.display, transpose=transpose, reduce=reduce.value, scale=scale_text,
        out_format=settings.out_format, bit_depth=bit_depth,
        compress_level=imageio.DEFAULT_PNG_LEVEL if compress_level is None else compress_level,
        alpha=alpha.value, background=background, quality=quality, lossless=lossless, strip=strip,
        max_pixels=(None if max_pixels == 0 else max_pixels) if max_pixels is not None
        else imageio.DEFAULT_MAX_PIXELS,
        # inputs read by region (TIFF, npy, zarr) are limited only when --max-pixels is given
        streamed_max_pixels=None if max_pixels in (None, 0) else max_pixels,
        verify=verify, map_stats=as_json, spec_text=" ".join(f"-k {spec}" for spec in kernel) or "bank",
        **_memory_budgets(),
        normalize=normalization, activation=activation.value,
    )
    layer_options = {key: _given_value(key, geometry, transpose) for key in given
                     if key not in ("channels",)}
    if groups is not None:
        layer_options["groups"] = groups
    job_for = _JobFactory(job, bank, layer_options, groups, quiet)
    from convcli.distributed import check_options

    chunk_size = check_options(jobs, scheduler, chunks)
    shown = bank if bank.layer is None else bank.layer.to_bank(transposed=transpose, groups=groups)
    extra = {
        "normalize": None if normalization is None
        else {"mean": list(normalization[0]), "std": list(normalization[1])},
        "activation": activation.value,
        "groups": groups,
    }
    entries = _expand_inputs(inputs)
    sources = [source for source, _ in entries]
    if sources.count("-") > 1:
        raise OptionError("stdin (-) can be read only once")
    settings.batch = len(entries) > 1
    _check_output(settings, settings.batch)
    _check_file_output(settings, job, sources)
    plans = _plan_names(settings, job, entries)
    if output and output != "-" and output.endswith(("/", "\\")):
        Path(output).mkdir(parents=True, exist_ok=True)  # -o DIR/: validated, now created
    # files skipped as this run's own outputs are outputs, not protected inputs
    own_outputs = {index for index, plan in enumerate(plans)
                   if plan is not None and (plan.skip or "").endswith("an output of this run")}
    inputs_seen = [source for index, source in enumerate(sources)
                   if source != "-" and index not in own_outputs]
    records: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    progress = _progress(len(entries), _wants_progress(sources, quiet))
    try:
        for index, (source, problem), plan, finished in _outcomes(job_for, entries, plans, settings,
                                                                 inputs_seen, jobs, scheduler, chunk_size):
            try:
                if problem is not None:
                    raise problem
                if plan is not None and plan.skip:
                    skipped.append({"input": source, "reason": plan.skip})
                    if not quiet:
                        err(plan.skip)
                    if progress is not None:
                        progress.update(0, completed=len(records) + len(failures) + len(skipped))
                    continue
                on_band = None
                if progress is not None:
                    def on_band(fraction: float, done: int = index) -> None:
                        progress.update(0, completed=done + fraction)
                record = finished or _run_one(job_for, source, settings, inputs_seen, plan, on_band)
                if record.get("skipped"):
                    skipped.append({"input": source, "reason": record["skipped"]})
                else:
                    records.append(record)
            except OptionError:
                raise  # the same for every input: stop the batch
            except (ConvcliError, MemoryError) as exc:
                exc = describe_error(exc, source)
                if not settings.batch and not as_json:
                    raise exc from None
                failures.append({"input": source, "error": str(exc)})
                err(f"convcli: error: {exc}")
            if progress is not None:
                progress.update(0, completed=len(records) + len(failures) + len(skipped))
    finally:
        if progress is not None:
            progress.stop()
    if jobs != 1 or scheduler is not None:  # workers finish in any order: report in input order
        position = {source: index for index, source in reversed(list(enumerate(sources)))}
        for items in (records, failures, skipped):
            items.sort(key=lambda item: position.get(item["input"], len(sources)))
    if settings.batch and not quiet:
        err(f"{len(records)} of {len(entries)} inputs done, {len(failures)} failed"
            + (f", {len(skipped)} skipped" if skipped else ""))
    if as_json:
        if job_for.layer_record is not None:
            extra["layer"] = job_for.layer_record
            extra["groups"] = job_for.layer_record["groups"]
        summary = _summary(shown, sources, records, failures, extra)
        summary["skipped"] = skipped
        write_json(summary)  # one compact line, flushed: a closed pipe fails inside the error translation
    if failures:
        raise typer.Exit(1)


def _files_per_input(job: Any, source: str, out_format: str | None) -> tuple[str, tuple[str, ...]]:
    """The output format and the labels of one input's files, from its name (nothing is read)."""
    fmt = out_format or ("npy" if source.lower().endswith((".npy", ".zarr")) else "png")
    if job.reduce != "none":
        labels: tuple[str, ...] = (f"{job.bank_name}-{job.reduce}",)
    else:
        labels = tuple(job.labels)
    if fmt in ("npy", "npz", "zarr"):
        labels = (labels[0] if len(labels) == 1 else job.bank_name,)
    return fmt, labels


def _format_of(settings: _Settings) -> str | None:
    """-f, else the format the -o suffix names (None: decided per input)."""
    from convcli.imageio import format_from_suffix
    from convcli.job import is_directory_target

    if settings.out_format:
        return settings.out_format
    output = settings.output
    if output and output != "-" and not is_directory_target(output) and Path(output).suffix:
        return "zarr" if Path(output).suffix.lower() == ".zarr" else format_from_suffix(output)
    return None


def _check_file_output(settings: _Settings, job: Any, sources: list[str]) -> None:
    """``-o NAME`` without a suffix for several maps is an error, not a stem (typo of a directory?)."""
    from convcli.job import is_directory_target

    output = settings.output
    if not output or output == "-" or is_directory_target(output) or Path(output).suffix:
        return
    _fmt, labels = _files_per_input(job, sources[0] if sources else "", _format_of(settings))
    if len(labels) > 1:
        raise OptionError(
            f"-o {output}: {len(labels)} maps ({', '.join(labels)}) need a directory (-o {output}/, "
            f"created) or a file name with a suffix (-o {output}.png writes {output}.{labels[0]}.png, …)"
        )
    if not settings.out_format:
        raise OptionError(
            f"-o {output}: no suffix to tell the format; name the file (.png, .tiff, .jpg, .webp, .npy, "
            f".npz, .zarr), give -f, or write {output}/ for a directory"
        )


def _plan_names(settings: _Settings, job: Any, entries: list[tuple[str, Any]]) -> list[Any]:
    """Every output name of the batch (no -o, or -o DIR), decided before the first write.

    One :class:`convcli.cli.naming.Planned` per entry (None for a failed
    entry, or for every entry when -o is a file or ``-``).
    """
    from convcli.cli.naming import Request, plan_batch
    from convcli.job import _EXTENSIONS, is_directory_target

    output = settings.output
    if output == "-" or (output is not None and not is_directory_target(output)):
        return [None] * len(entries)
    fmt_given = _format_of(settings)
    named = set(settings.named_inputs)
    requests = []
    for source, problem in entries:
        if problem is None:
            fmt, labels = _files_per_input(job, source, fmt_given)
            requests.append(Request(source, labels, _EXTENSIONS.get(fmt, f".{fmt}"),
                                    found=source not in named))
    planned = iter(plan_batch(requests, output, montage=settings.montage if settings.batch else None))
    return [next(planned) if problem is None else None for _, problem in entries]


apply.__doc__ = APPLY_HELP
