"""The kernel registry and loader: kernel specs → :class:`~convcli.kernels.KernelBank`.

This is the I/O side of the kernel library: it reads the preset data files in
:func:`kernels_dir` and user kernel files. The pure parts (types, inline
parser, generators) are :mod:`convcli.kernels`.

A **spec** (one ``-k/--kernel`` value) is resolved in this order:

1. contains ``;`` or starts with ImageMagick's ``WxH:`` → inline weights
   (:func:`convcli.kernels.parse_inline`);
2. a preset or parametric name, ``name[:key=value,…]`` (``sobel``,
   ``gaussian:sigma=2``), case-insensitive;
3. an existing file: ``.npy`` of shape ``(kh, kw)``, ``(F, kh, kw)`` or
   ``(F, kh, kw, C)``; ``.toml`` in the ``kernels/`` format; anything else a
   text matrix like ``numpy.loadtxt`` (blank lines separate the kernels of a
   bank, ``#`` starts a comment); a model file (``.safetensors``, ``.npz``,
   ``.pt``, ``.pth``, ``.onnx``) without ``:NAME`` is an error listing its layers;
4. ``FILE:NAME`` where FILE (the part before a ``:``) is an existing model
   file: one conv layer in PyTorch layout (:mod:`convcli.modelfiles`,
   :meth:`convcli.layers.ModelLayer.to_bank`); such a bank must be the only
   ``-k`` of a command, since it brings its own bias and geometry;
5. a row of numbers such as ``1,2,1`` → a 1×k inline kernel.

A bare preset name wins over a file of the same name in the current
directory (write ``./sobel`` for the file). A spec that looks like a path
(has ``/`` or a known suffix) but does not exist is "kernel file not found";
an unknown name gets a "did you mean" from :mod:`difflib`.

Preset file format (TOML, one document per file; see ``kernels/sobel.toml``)::

    name = "sobel"                  # required for shipped presets
    description = "…"
    members = ["sobel-x", "sobel-y"]  # a bank: names of presets/kernels (may
                                      # carry params: "gaussian:sigma=2");
                                      # default: every [[kernels]] entry
    display = "offset:128"          # optional hint: abs | minmax | clip | offset:V
    scale = "1/16"                  # optional factor applied to the weights
    weights = [[…], …]              # a single kernel (instead of [[kernels]])

    [[kernels]]                     # kernels defined here, each a preset too
    name = "sobel-x"
    description = "…"
    weights = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]   # rows top to bottom;
                                    # a tap may be a list of C numbers
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

import numpy as np

from convcli.errors import KernelError
from convcli.kernels import (
    GENERATORS,
    Kernel,
    KernelBank,
    is_imagemagick,
    make_parametric,
    parse_inline,
    parse_numbers,
    parse_params,
)
from convcli.modelfiles import (
    is_model_file,
    layer_names_error,
    missing_model_file,
    read_layer,
    split_model_spec,
)

__all__ = [
    "PresetInfo",
    "kernels_dir",
    "list_presets",
    "load_bank",
    "load_kernel_file",
    "resolve_kernel",
]

_TOP_KEYS = {"name", "description", "convention", "display", "scale", "weights", "kernels",
             "members"}
_KERNEL_KEYS = {"name", "description", "convention", "display", "scale", "weights"}
_PATH_SUFFIXES = {".npy", ".npz", ".toml", ".txt", ".csv", ".tsv", ".dat", ".asc", ".safetensors",
                  ".pt", ".pth", ".onnx"}
_NUMBER_START = re.compile(r"^[-+]?(\d|\.\d)")
_TEXT_SPLIT = re.compile(r"[,\s]+")


@dataclass(frozen=True)
class PresetInfo:
    """One row of ``convcli kernels list``."""

    name: str
    size: str  # "3×3", or "2×2, 3×3" when the members differ
    count: int  # kernels in the bank
    description: str
    params: str  # "sigma=1, size=auto" for parametric kernels, else ""


def kernels_dir() -> Path:
    """The folder of the preset data files.

    Inside an installed wheel it is ``convcli/_kernels`` (``pyproject.toml``
    force-includes the top-level ``kernels/`` there); in a source checkout or
    an editable install it is the repository's top-level ``kernels/``.
    """
    package = Path(__file__).resolve().parent
    installed = package / "_kernels"
    if installed.is_dir():
        return installed
    return package.parent / "kernels"


# --- preset documents -------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    """A named thing in a preset document: concrete kernels or member references."""

    name: str
    source: str
    description: str
    kernels: tuple[Kernel, ...] = ()
    members: tuple[str, ...] = ()
    local: Mapping[str, Kernel] | None = None  # the document's own kernels, for members


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _weights_array(rows: object, where: str) -> np.ndarray:
    """TOML ``weights`` (rows of numbers, or of lists of C numbers) → array; names bad rows."""
    if not isinstance(rows, list) or not rows or not all(isinstance(row, list) for row in rows):
        raise KernelError(f"{where}: `weights` must be a non-empty list of rows (lists)")
    width = len(rows[0])
    depth: int | None = None
    for number, row in enumerate(rows, start=1):
        if len(row) != width or not row:
            raise KernelError(
                f"{where}: ragged weights: row {number} has {len(row)} values, row 1 has {width}"
            )
        for value in row:
            if _is_number(value):
                tap_depth = 0
            elif isinstance(value, list) and value and all(_is_number(v) for v in value):
                tap_depth = len(value)
            else:
                raise KernelError(f"{where}: row {number}: {value!r} is not a number")
            if depth is None:
                depth = tap_depth
            elif tap_depth != depth:
                raise KernelError(
                    f"{where}: row {number}: every tap needs the same number of channels"
                )
    return np.array(rows, dtype=np.float64)


def _scale(value: object, where: str) -> float:
    """``scale`` of a preset: a number or a fraction text such as ``"1/16"``."""
    if value is None:
        return 1.0
    number = None
    if _is_number(value):
        number = float(value)
    elif isinstance(value, str):
        values = parse_numbers(value, f"{where}: `scale`")
        number = values[0] if len(values) == 1 else None
    if number is None or number == 0 or not np.isfinite(number):
        raise KernelError(f"{where}: `scale` must be a non-zero number or 'a/b', got {value!r}")
    return number


def _text(value: object, key: str, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise KernelError(f"{where}: `{key}` must be a string, got {value!r}")
    return value


def _make_kernel(table: Mapping[str, Any], name: str, where: str, defaults: Mapping[str, Any]
                 ) -> Kernel:
    where = f"{where}: kernel {name!r}"
    factor = _scale(table.get("scale", defaults.get("scale")), where)
    weights = _weights_array(table.get("weights"), where) * factor
    display = table.get("display", defaults.get("display"))
    try:
        return Kernel(name, weights, _text(table.get("description"), "description", where),
                      display)
    except KernelError as exc:
        raise KernelError(f"{where}: {exc}") from None


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise KernelError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )


def _check_name(name: object, where: str) -> str:
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", name.lower()):
        raise KernelError(
            f"{where}: `name` must be letters, digits and '_.-' (no ':'), got {name!r}"
        )
    return name.lower()


def _parse_document(data: Mapping[str, Any], source: str, default_name: str | None) -> list[_Entry]:
    """Validate one TOML document; return its entries (its own kernels, then its name)."""
    _check_keys(data, _TOP_KEYS, source)
    name = _check_name(data.get("name", default_name), source)
    description = _text(data.get("description"), "description", source)
    defaults = {key: data[key] for key in ("scale", "display") if key in data}
    if "weights" in data:
        if "kernels" in data or "members" in data:
            raise KernelError(f"{source}: `weights` (one kernel) excludes [[kernels]] and `members`")
        kernel = _make_kernel(dict(data, description=description), name, source, {})
        return [_Entry(name, source, description, kernels=(kernel,))]
    if "kernels" not in data and "members" not in data:
        raise KernelError(f"{source}: give `weights`, [[kernels]] or `members`")
    local: dict[str, Kernel] = {}
    tables = data.get("kernels", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise KernelError(f"{source}: `kernels` must be an array of tables [[kernels]]")
    for index, table in enumerate(tables, start=1):
        where = f"{source}: [[kernels]] #{index}"
        _check_keys(table, _KERNEL_KEYS, where)
        kernel_name = _check_name(table.get("name"), where)
        if kernel_name in local or kernel_name == name:
            raise KernelError(f"{where}: name {kernel_name!r} is used twice")
        local[kernel_name] = _make_kernel(table, kernel_name, source, defaults)
    members = data.get("members", list(local))
    if (not isinstance(members, list) or not members
            or not all(isinstance(m, str) and m.strip() for m in members)):
        raise KernelError(f"{source}: `members` must be a non-empty list of kernel names")
    entries = [_Entry(k.name, source, k.description, kernels=(k,)) for k in local.values()]
    entries.append(_Entry(name, source, description, members=tuple(members), local=local))
    return entries


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise KernelError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise KernelError(f"cannot read kernel file {path}: {exc.strerror or exc}") from None


@functools.lru_cache(maxsize=4)
def _registry_of(directory: str) -> dict[str, _Entry]:
    entries: dict[str, _Entry] = {}
    for path in sorted(Path(directory).glob("*.toml")):
        for entry in _parse_document(_read_toml(path), str(path), None):
            if entry.name in GENERATORS:
                raise KernelError(f"{path}: {entry.name!r} is the name of a parametric kernel")
            if entry.name in entries:
                raise KernelError(
                    f"{path}: preset {entry.name!r} is already defined in {entries[entry.name].source}"
                )
            entries[entry.name] = entry
    return entries


def _registry() -> dict[str, _Entry]:
    return _registry_of(str(kernels_dir()))


def _expand(entry: _Entry, registry: Mapping[str, _Entry], seen: tuple[str, ...] = ()
            ) -> tuple[Kernel, ...]:
    """An entry's kernels, following member references (own kernels first, then presets)."""
    if entry.kernels:
        return entry.kernels
    if entry.name in seen:
        raise KernelError(f"{entry.source}: members form a cycle: {' → '.join((*seen, entry.name))}")
    kernels: list[Kernel] = []
    for member in entry.members:
        key = member.strip().lower()
        if entry.local and key in entry.local:
            kernels.append(entry.local[key])
        elif key in registry:
            kernels.extend(_expand(registry[key], registry, (*seen, entry.name)))
        else:
            name, _, params = key.partition(":")
            if name not in GENERATORS:
                raise KernelError(f"{entry.source}: member {member!r} is not a known kernel")
            try:
                kernels.extend(make_parametric(name, parse_params(params)).kernels)
            except KernelError as exc:
                raise KernelError(f"{entry.source}: member {member!r}: {exc}") from None
    return tuple(kernels)


def _bank_of(entry: _Entry, registry: Mapping[str, _Entry]) -> KernelBank:
    return KernelBank(entry.name, _expand(entry, registry))


# --- user files ------------------------------------------------------------------


def _file_label(path: Path) -> str:
    label = re.sub(r"[^A-Za-z0-9_.+=-]+", "-", path.stem).strip("-._+=")
    return label or "file"


def _bank_from_arrays(path: Path, arrays: Sequence[np.ndarray]) -> KernelBank:
    label = _file_label(path)
    if len(arrays) == 1:
        return KernelBank(label, (Kernel(label, arrays[0], f"from {path}"),))
    return KernelBank(label, tuple(
        Kernel(f"{label}-{index}", array, f"from {path}") for index, array in enumerate(arrays)
    ))


def _read_npy(path: Path) -> list[np.ndarray]:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise KernelError(f"cannot read kernel file {path} as .npy: {exc}") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise KernelError(f"{path}: a kernel array must hold real numbers, got {array.dtype}")
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim == 2:
        return [array]
    if array.ndim in (3, 4):
        if array.shape[0] == 0:
            raise KernelError(f"{path}: the bank holds no kernels, shape {array.shape}")
        return list(array)
    raise KernelError(
        f"{path}: shape {array.shape} is not (kh, kw), (F, kh, kw) or (F, kh, kw, C)"
    )


def _read_text(path: Path) -> list[np.ndarray]:
    """A text matrix: rows of numbers; blank lines separate kernels; ``#`` comments."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise KernelError(
            f"{path}: not a text matrix (binary data); kernel files are .npy, .toml or text"
        ) from None
    except OSError as exc:
        raise KernelError(f"cannot read kernel file {path}: {exc.strerror or exc}") from None
    blocks: list[list[list[float]]] = [[]]
    first_line: dict[int, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            if blocks[-1]:
                blocks.append([])
            continue
        content = line.split("#", 1)[0]
        if not content.strip():
            continue
        values = parse_numbers(content, f"{path} line {number}")
        block = blocks[-1]
        if not block:
            first_line[len(blocks) - 1] = number
        elif len(values) != len(block[0]):
            raise KernelError(
                f"{path} line {number}: ragged rows: {len(values)} values, but line "
                f"{first_line[len(blocks) - 1]} has {len(block[0])}"
            )
        block.append(values)
    arrays = [np.array(block, dtype=np.float64) for block in blocks if block]
    if not arrays:
        raise KernelError(f"{path}: the file holds no numbers")
    return arrays


def load_kernel_file(path: str | Path) -> KernelBank:
    """Read a user kernel file: ``.npy``, ``.toml`` (preset format) or a text matrix.

    Kernels are named after the file: ``edges.npy`` → ``edges`` (one kernel)
    or ``edges-0``, ``edges-1``, … (a bank); a ``.toml`` file names its own.
    """
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if is_model_file(path):
        raise layer_names_error(path)
    if suffix == ".npy":
        return _bank_from_arrays(path, _read_npy(path))
    if suffix == ".toml":
        entries = _parse_document(_read_toml(path), str(path), _file_label(path).lower())
        registry = dict(_registry())
        registry.update({entry.name: entry for entry in entries[:-1]})
        return _bank_of(entries[-1], registry)
    return _bank_from_arrays(path, _read_text(path))


# --- resolution ----------------------------------------------------------------------


def _existing_file(text: str) -> Path | None:
    try:
        path = Path(text).expanduser()
        return path if path.is_file() else None
    except (OSError, ValueError, RuntimeError):  # bad bytes, name too long, no home
        return None


def _is_dir(text: str) -> bool:
    try:
        return Path(text).expanduser().is_dir()
    except (OSError, ValueError, RuntimeError):
        return False


def _looks_like_path(text: str) -> bool:
    if any(sep in text for sep in "/\\") or text.startswith(("~", ".")):
        return True
    try:
        return Path(text).suffix.lower() in _PATH_SUFFIXES
    except ValueError:
        return False


def _model_bank(text: str) -> KernelBank | None:
    """``FILE:TENSOR`` of a model file → the layer's bank; ``None`` when not such a spec."""
    found = split_model_spec(text)
    if found is not None:
        return read_layer(*found).to_bank()
    missing = missing_model_file(text)
    if missing is not None:
        raise KernelError(f"model file not found: {missing} (in kernel {text!r})")
    return None


def _all_names() -> list[str]:
    return sorted({*_registry(), *GENERATORS})


def _unknown(name: str) -> KernelError:
    tokens = [token for token in re.split(r"[,;\s]+", name.strip()) if token]
    try:
        values = [float(token) for token in tokens]
    except ValueError:
        values = []
    if values and not all(math.isfinite(v) for v in values):  # inline weights with nan / inf
        bad = next(t for t, v in zip(tokens, values) if not math.isfinite(v))
        return KernelError(f"kernel {name!r}: weights must be finite, got {bad!r}")
    close = difflib.get_close_matches(name, _all_names(), n=1, cutoff=0.6)
    if close:
        return KernelError(f"no kernel {name!r}; did you mean {close[0]!r}? (convcli kernels list)")
    return KernelError(
        f"no kernel {name!r} (convcli kernels list shows the names; inline weights look like "
        "'1,0,-1;2,0,-2;1,0,-1')"
    )


def _from_registry(name: str, params_text: str) -> KernelBank:
    registry = _registry()
    if name in registry:
        if params_text.strip():
            raise KernelError(f"preset {name!r} takes no parameters, got {params_text.strip()!r}")
        return _bank_of(registry[name], registry)
    return make_parametric(name, parse_params(params_text))


def resolve_kernel(spec: str) -> KernelBank:
    """Turn one kernel spec into a bank (see the module docstring for the order).

    Examples: ``"sobel"`` (2 kernels), ``"gaussian:sigma=2,size=9"``,
    ``"1,0,-1;2,0,-2;1,0,-1"``, ``"3x3: 0,1,0,1,-4,1,0,1,0"``, ``"1,2,1"``
    (1×3), ``"weights.npy"``, ``"my-bank.toml"``, ``"k.txt"``.

    Raises
    ------
    KernelError
        Every failure, with a message naming the spec (or the file).
    """
    if not isinstance(spec, str):
        raise KernelError(f"a kernel spec must be text, got {spec!r}")
    text = spec.strip()
    if not text:
        raise KernelError(
            "empty kernel spec ''; give a name (convcli kernels list), weights such as "
            "'1,0,-1;2,0,-2;1,0,-1', or a file"
        )
    try:
        if ";" in text or is_imagemagick(text):
            return parse_inline(text)
        name, _, params_text = text.partition(":")
        name = name.strip().lower()
        if name in GENERATORS or name in _registry():
            return _from_registry(name, params_text)
    except KernelError as exc:
        raise KernelError(f"kernel {text!r}: {exc}") from None
    path = _existing_file(text)
    if path is not None:
        return load_kernel_file(path)
    model = _model_bank(text)
    if model is not None:
        return model
    if _NUMBER_START.match(text):
        try:
            return parse_inline(text)
        except KernelError as exc:
            raise KernelError(f"kernel {text!r}: {exc}") from None
    if _looks_like_path(text):
        if _is_dir(text):
            raise KernelError(f"kernel file {text} is a directory; give a .npy, .toml or text file")
        raise KernelError(f"kernel file not found: {text}")
    raise _unknown(name)


def load_bank(specs: Sequence[str] | str) -> KernelBank:
    """Resolve several ``-k`` specs into one bank, members in order.

    The bank's name joins the parts' names with ``+`` (``sobel+gaussian-s2``).
    Inline kernels are numbered across the bank (``k0``, ``k1``, …) and a
    repeated label gets ``-2``, ``-3``, … so that every map has its own name.
    """
    if isinstance(specs, str):
        specs = [specs]
    banks = [resolve_kernel(spec) for spec in specs]
    if not banks:
        raise KernelError("no kernel given; use -k NAME (convcli kernels list)")
    if len(banks) == 1:
        return banks[0]
    _refuse_mixed_layers(specs, banks)
    labelled: list[tuple[str, Kernel]] = []
    inline_count = 0
    for bank in banks:
        for kernel in bank.kernels:
            label = kernel.name
            if bank.name == "inline":
                label = f"k{inline_count}"
                inline_count += 1
            labelled.append((label, kernel))
    return KernelBank("+".join(bank.name for bank in banks), relabel_unique(labelled))


def relabel_unique(labelled: Iterable[tuple[str, Kernel]]) -> tuple[Kernel, ...]:
    """The kernels renamed to their labels, a repeated label made unique with ``-2``, ``-3``, ….

    A label already taken (by an earlier kernel, as given or as made unique)
    becomes ``label-2``, or the first of ``label-3``, ``label-4``, … that is
    free. A kernel whose final label is its name is kept as it is; any other
    is a new :class:`Kernel` with the same weights, description and display.
    """
    kernels: list[Kernel] = []
    seen: set[str] = set()
    for label, kernel in labelled:
        base, repeat = label, 1
        while label in seen:
            repeat += 1
            label = f"{base}-{repeat}"
        seen.add(label)
        kernels.append(kernel if label == kernel.name
                       else Kernel(label, kernel.weights, kernel.description, kernel.display))
    return tuple(kernels)


def _refuse_mixed_layers(specs: Sequence[str], banks: Sequence[KernelBank]) -> None:
    """A model layer brings its own bias, groups and geometry: it cannot share a bank."""
    for spec, bank in zip(specs, banks):
        if bank.layer is not None:
            raise KernelError(
                f"kernel {spec!r} is a model layer; it must be the only -k (run one command per layer)"
            )


def _size_text(bank: KernelBank) -> str:
    sizes = list(dict.fromkeys(kernel.size_text for kernel in bank.kernels))
    return ", ".join(sizes)


def list_presets() -> list[PresetInfo]:
    """Every name :func:`resolve_kernel` knows, sorted: data presets and generators."""
    registry = _registry()
    infos = []
    for name, entry in registry.items():
        bank = _bank_of(entry, registry)
        infos.append(PresetInfo(name, _size_text(bank), len(bank), entry.description, ""))
    for name, generator in GENERATORS.items():
        bank = make_parametric(name, {})
        infos.append(PresetInfo(name, _size_text(bank), 1, generator.description,
                                generator.params_text))
    return sorted(infos, key=lambda info: info.name)
