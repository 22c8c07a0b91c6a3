"""Read convolution layers from the files networks are saved in.

An I/O module (it opens files); the layers it returns are pure
:class:`convcli.layers.ModelLayer` objects.

Formats (by suffix), each addressed as ``FILE:NAME``:

* ``.safetensors``: a tensor name (``conv1.weight``), read through the
  ``safetensors`` package's numpy API; ``BF16`` tensors (numpy has no
  bfloat16) are decoded from their bytes: the 16 bits are the high half of
  a float32.
* ``.npz``: an array name.
* ``.pt`` / ``.pth``: a state dict (or a checkpoint holding one under
  ``state_dict`` or ``model``) read with ``torch.load(weights_only=True)``
  when PyTorch is installed. Keys saved from a wrapped model
  (``module.conv1.weight``) also answer to ``conv1.weight`` when only one key
  does.
* ``.onnx``: a ``Conv`` or ``ConvTranspose`` node by node name (or by the
  name of its weight initializer), with its attributes as geometry.

float16 and bfloat16 weights are returned as float32, float64 stays. A
tensor name ending in ``weight`` brings the ``bias`` beside it when that is
a 1-D tensor (``conv1.weight`` → ``conv1.bias``).
"""

from __future__ import annotations

import difflib
import json
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convcli.errors import KernelError
from convcli.layers import ModelLayer

__all__ = [
    "MODEL_SUFFIXES",
    "LayerInfo",
    "is_model_file",
    "layer_names_error",
    "list_layers",
    "missing_model_file",
    "read_layer",
    "split_model_spec",
]

MODEL_SUFFIXES = (".safetensors", ".npz", ".pt", ".pth", ".onnx")
_CONV_OPS = ("Conv", "ConvTranspose")
_ST_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
              "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


@dataclass(frozen=True)
class LayerInfo:
    """One row of ``convcli kernels show FILE``: a 4-D tensor or a Conv node."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    kind: str  # "tensor", "Conv" or "ConvTranspose"
    note: str = ""  # ONNX geometry, or "bias" when a matching bias exists


def is_model_file(path: str | Path) -> bool:
    """True when ``path`` has one of :data:`MODEL_SUFFIXES` (case-insensitive)."""
    return Path(path).suffix.lower() in MODEL_SUFFIXES


def split_model_spec(text: str) -> tuple[Path, str] | None:
    """``FILE:NAME`` → ``(FILE, NAME)`` when FILE is an existing model file, else ``None``.

    Every ``:`` is tried from the left, so both the file path and the name
    may contain colons (ONNX names often do); the first split whose left part
    is an existing file with a model suffix wins.
    """
    start = 0
    while (index := text.find(":", start)) != -1:
        start = index + 1
        head = text[:index]
        if not is_model_file(head):
            continue
        try:
            path = Path(head).expanduser()
            if path.is_file():
                return path, text[index + 1:]
        except (OSError, ValueError, RuntimeError):
            continue
    return None


def missing_model_file(text: str) -> str | None:
    """The file part of ``FILE:NAME`` when it has a model suffix but does not exist."""
    start = 0
    while (index := text.find(":", start)) != -1:
        start = index + 1
        if is_model_file(text[:index]):
            return text[:index]
    return None


# --- one reader per format: names → (shape, dtype), and name → array --------------------


class _Store:
    """The named arrays of a tensor file, read lazily where the format allows."""

    def __init__(self, path: Path, shapes: Mapping[str, tuple[tuple[int, ...], str]],
                 read: Callable[[str], np.ndarray]) -> None:
        self.path = path
        self.shapes = dict(shapes)
        self._read = read

    def array(self, name: str) -> np.ndarray:
        return _as_float(self._read(name), f"{self.path}:{name}")


def _as_float(array: Any, where: str) -> np.ndarray:
    values = np.asarray(array)
    if values.dtype == np.float64:
        return values
    if values.dtype.kind in "fiub" or str(values.dtype) == "bfloat16":
        return values.astype(np.float32)
    raise KernelError(f"{where}: a conv weight must hold real numbers, got {values.dtype}")


def _bf16_to_float32(raw: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """bfloat16 bytes (little-endian) → float32: the 16 bits are a float32's high half."""
    halves = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
    return halves.view(np.float32).reshape(shape)


def _safetensors_store(path: Path) -> _Store:
    try:
        from safetensors import SafetensorError, safe_open
    except ImportError:
        raise KernelError(
            f"{path}: reading .safetensors needs the safetensors package (pip install safetensors)"
        ) from None
    try:
        with safe_open(str(path), framework="np") as handle:
            shapes = {}
            for name in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                piece = handle.get_slice(name)
                dtype = str(piece.get_dtype())
                shapes[name] = (tuple(int(n) for n in piece.get_shape()), _ST_DTYPES.get(dtype, dtype))
    except (SafetensorError, OSError, ValueError) as exc:
        raise KernelError(f"cannot read {path} as safetensors: {exc}") from None

    def read(name: str) -> np.ndarray:
        shape, dtype = shapes[name]
        if dtype == "bfloat16":
            return _bf16_to_float32(_safetensors_bytes(path, name), shape)
        with safe_open(str(path), framework="np") as handle:
            return handle.get_tensor(name)

    return _Store(path, shapes, read)


def _safetensors_bytes(path: Path, name: str) -> bytes:
    """The raw data of tensor ``name``: an 8-byte little-endian header size, a JSON header
    of ``{name: {dtype, shape, data_offsets: [begin, end]}}``, then the data."""
    with path.open("rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(size))
        begin, end = header[name]["data_offsets"]
        handle.seek(8 + size + begin)
        return handle.read(end - begin)


def _npz_store(path: Path) -> _Store:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError) as exc:
        raise KernelError(f"cannot read {path} as .npz: {exc}") from None
    shapes = {name: (tuple(a.shape), str(a.dtype)) for name, a in arrays.items()}
    return _Store(path, shapes, arrays.__getitem__)


def _torch_store(path: Path) -> _Store:
    try:
        import torch
    except ImportError:
        raise KernelError(
            f"{path}: reading .pt/.pth needs PyTorch; install torch or convert the file to "
            "safetensors"
        ) from None
    import pickle

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise KernelError(
            f"{path}: torch.load(weights_only=True) refuses it (a pickled model object, not a "
            "state dict); save model.state_dict() or convert it to safetensors"
        ) from None
    except Exception as exc:  # torch raises many kinds for unreadable files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = re.sub(r"\x1b\[[0-9;]*m", "", first)
        raise KernelError(f"cannot read {path} with torch.load(weights_only=True): {first}") from None
    if isinstance(data, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(data.get(key), Mapping):
                data = data[key]
                break
    if not isinstance(data, Mapping):
        raise KernelError(f"{path}: holds a {type(data).__name__}, not a state dict of named tensors")
    tensors = {str(k): v for k, v in data.items() if isinstance(v, torch.Tensor)}
    shapes = {k: (tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in tensors.items()}

    def read(name: str) -> np.ndarray:
        tensor = tensors[name].detach()
        if tensor.dtype != torch.float64:
            tensor = tensor.to(torch.float32)
        return tensor.numpy()

    return _Store(path, shapes, read)


_STORES = {".safetensors": _safetensors_store, ".npz": _npz_store, ".pt": _torch_store,
           ".pth": _torch_store}


def _strip_module(name: str) -> str:
    while name.startswith("module."):
        name = name[len("module."):]
    return name


def _closest(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:12]) + (f", … ({len(names)} in all)" if len(names) > 12 else "")
    return shown or "none"


def _find(store: _Store, name: str) -> str:
    """The stored key for ``name``: exact, else the one key equal to it without ``module.``."""
    if name in store.shapes:
        return name
    wanted = _strip_module(name)
    matches = [key for key in store.shapes if _strip_module(key) == wanted]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise KernelError(f"{store.path}: {name!r} is ambiguous: {', '.join(matches)}")
    conv = [key for key, (shape, _) in store.shapes.items() if len(shape) == 4]
    raise KernelError(
        f"{store.path}: no tensor {name!r}{_closest(name, conv or list(store.shapes))} "
        f"(4-D tensors: {_listing(conv)})"
    )


def _bias_key(store: _Store, key: str) -> str | None:
    """``X.weight`` → ``X.bias`` when that is a 1-D tensor (its length is checked on use)."""
    if not key.endswith("weight"):
        return None
    candidate = key[: -len("weight")] + "bias"
    shape = store.shapes.get(candidate, ((), ""))[0]
    return candidate if len(shape) == 1 else None


# --- ONNX ---------------------------------------------------------------------------------


def _onnx_model(path: Path) -> Any:
    try:
        import onnx
    except ImportError:
        raise KernelError(f"{path}: reading .onnx needs the onnx package (pip install onnx)") from None
    try:
        return onnx.load(str(path))
    except Exception as exc:  # protobuf decode errors have no common base
        raise KernelError(f"cannot read {path} as ONNX: {exc}") from None


def _onnx_constants(graph: Any) -> dict[str, Any]:
    """Initializers and ``Constant`` node outputs of a graph, by name (TensorProto)."""
    constants = {tensor.name: tensor for tensor in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    constants[node.output[0]] = attribute.t
    return constants


def _onnx_nodes(graph: Any) -> list[tuple[str, Any]]:
    """``(name, node)`` of every Conv/ConvTranspose node; unnamed ones are ``OpType_index``."""
    return [(node.name or f"{node.op_type}_{index}", node)
            for index, node in enumerate(graph.node) if node.op_type in _CONV_OPS]


def _onnx_array(tensor: Any, where: str) -> np.ndarray:
    from onnx import numpy_helper

    return _as_float(numpy_helper.to_array(tensor), where)


def _onnx_geometry(node: Any, weight_shape: tuple[int, ...], where: str) -> dict[str, Any]:
    from onnx import helper

    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if "output_shape" in attributes:
        raise KernelError(f"{where}: ConvTranspose `output_shape` is not supported (give pads)")

    def pair_of(key: str, default: int) -> tuple[int, int]:
        values = tuple(int(v) for v in attributes.get(key, (default, default)))
        if len(values) != 2:
            raise KernelError(f"{where}: `{key}` {list(values)} is not for a 2-D convolution")
        return values  # type: ignore[return-value]

    kernel_shape = attributes.get("kernel_shape")
    if kernel_shape is not None and tuple(int(v) for v in kernel_shape) != tuple(weight_shape[2:]):
        raise KernelError(
            f"{where}: kernel_shape {list(kernel_shape)} does not match the weight {weight_shape}"
        )
    geometry: dict[str, Any] = {"stride": pair_of("strides", 1), "dilation": pair_of("dilations", 1)}
    if node.op_type == "ConvTranspose":
        geometry["output_padding"] = pair_of("output_padding", 0)
    auto_pad = attributes.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        geometry["padding"] = auto_pad.lower()
    elif auto_pad == "VALID":
        geometry["padding"] = (0, 0, 0, 0)
    elif auto_pad == "NOTSET":
        pads = tuple(int(v) for v in attributes.get("pads", (0, 0, 0, 0)))
        if len(pads) != 4:
            raise KernelError(f"{where}: `pads` {list(pads)} is not for a 2-D convolution")
        geometry["padding"] = (pads[0], pads[2], pads[1], pads[3])  # ONNX: begins, then ends
    else:
        raise KernelError(f"{where}: unknown auto_pad {auto_pad!r}")
    geometry["groups"] = int(attributes.get("group", 1))
    return geometry


def _geometry_note(geometry: Mapping[str, Any]) -> str:
    parts = [f"stride {','.join(map(str, geometry['stride']))}"]
    padding = geometry.get("padding")
    parts.append(f"pads {','.join(map(str, padding))}" if isinstance(padding, tuple)
                 else f"auto_pad {str(padding).upper()}")
    if geometry["dilation"] != (1, 1):
        parts.append(f"dilation {','.join(map(str, geometry['dilation']))}")
    if geometry.get("output_padding", (0, 0)) != (0, 0):
        parts.append(f"output_padding {','.join(map(str, geometry['output_padding']))}")
    parts.append(f"group {geometry['groups']}")
    return ", ".join(parts)


def _onnx_find(path: Path, name: str, nodes: list[tuple[str, Any]]) -> tuple[str, Any]:
    for node_name, node in nodes:
        if node_name == name:
            return node_name, node
    by_weight = [(n, node) for n, node in nodes if len(node.input) > 1 and node.input[1] == name]
    if len(by_weight) == 1:
        return by_weight[0]
    names = [n for n, _ in nodes]
    raise KernelError(
        f"{path}: no Conv/ConvTranspose node {name!r}{_closest(name, names)} "
        f"(nodes: {_listing(names)})"
    )


def _onnx_layer(path: Path, name: str) -> ModelLayer:
    graph = _onnx_model(path).graph
    node_name, node = _onnx_find(path, name, _onnx_nodes(graph))
    where = f"{path}:{node_name}"
    constants = _onnx_constants(graph)
    if len(node.input) < 2 or node.input[1] not in constants:
        raise KernelError(f"{where}: the weight is not a constant of the graph (an initializer)")
    weights = _onnx_array(constants[node.input[1]], where)
    if weights.ndim != 4:
        raise KernelError(f"{where}: weight shape {weights.shape} is not a 2-D convolution's (4-D)")
    geometry = _onnx_geometry(node, weights.shape, where)
    bias = None
    if len(node.input) > 2 and node.input[2]:
        if node.input[2] not in constants:
            raise KernelError(f"{where}: the bias is not a constant of the graph (an initializer)")
        bias = _onnx_array(constants[node.input[2]], where)
    groups = geometry.pop("groups")
    return ModelLayer(f"{path}:{name}", node_name, weights, bias=bias,
                      transposed=node.op_type == "ConvTranspose", groups=groups, geometry=geometry)


def _onnx_infos(path: Path) -> list[LayerInfo]:
    graph = _onnx_model(path).graph
    constants = _onnx_constants(graph)
    infos = []
    for node_name, node in _onnx_nodes(graph):
        tensor = constants.get(node.input[1]) if len(node.input) > 1 else None
        shape = tuple(int(n) for n in tensor.dims) if tensor is not None else ()
        from onnx import helper

        dtype = helper.tensor_dtype_to_np_dtype(tensor.data_type).name if tensor is not None else "?"
        note = ""
        if len(shape) == 4:
            try:
                note = _geometry_note(_onnx_geometry(node, shape, f"{path}:{node_name}"))
            except KernelError as exc:
                note = str(exc).split(": ", 1)[-1]
            if len(node.input) > 2 and node.input[2]:
                note += ", bias"
        infos.append(LayerInfo(node_name, shape, dtype, node.op_type, note))
    return infos


# --- public -------------------------------------------------------------------------------


def _check_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise KernelError(f"{path}: not a model file ({', '.join(MODEL_SUFFIXES)})")
    return suffix


def list_layers(path: str | Path) -> list[LayerInfo]:
    """The 4-D tensors (tensor files) or Conv/ConvTranspose nodes (ONNX) of a model file.

    Raises
    ------
    KernelError
        Unreadable file, unknown suffix, missing optional package.
    """
    path = Path(path).expanduser()
    if _check_suffix(path) == ".onnx":
        return _onnx_infos(path)
    store = _STORES[path.suffix.lower()](path)
    infos = []
    for name, (shape, dtype) in store.shapes.items():
        if len(shape) == 4:
            note = "bias" if _bias_key(store, name) else ""
            infos.append(LayerInfo(name, shape, dtype, "tensor", note))
    return infos


def read_layer(path: str | Path, name: str) -> ModelLayer:
    """Read the conv layer ``name`` of a model file (see the module notes).

    Returns
    -------
    ModelLayer
        PyTorch-layout float32/64 weights, the matching bias, and for ONNX the
        node's geometry, groups and transposed flag.

    Raises
    ------
    KernelError
        A missing name (with a did-you-mean), a tensor that is not 4-D, an
        unreadable file or a missing optional package.
    """
    path = Path(path).expanduser()
    source = f"{path}:{name}"
    if not name:
        raise KernelError(f"{source}: give a tensor name after ':' ({_names_hint(path)})")
    if _check_suffix(path) == ".onnx":
        return _onnx_layer(path, name)
    store = _STORES[path.suffix.lower()](path)
    key = _find(store, name)
    shape = store.shapes[key][0]
    if len(shape) != 4:
        raise KernelError(
            f"{source}: shape {shape} is not a 4-D conv weight (F, C/G, kh, kw)"
            f" (4-D tensors: {_listing([k for k, (s, _) in store.shapes.items() if len(s) == 4])})"
        )
    bias_key = _bias_key(store, key)
    bias = store.array(bias_key) if bias_key else None
    return ModelLayer(source, key, store.array(key), bias=bias)


def _names_hint(path: Path) -> str:
    try:
        names = [info.name for info in list_layers(path)]
    except KernelError:
        return "convcli kernels show FILE lists them"
    what = "Conv nodes" if path.suffix.lower() == ".onnx" else "4-D tensors"
    return f"{what}: {_listing(names)}"


def layer_names_error(path: str | Path) -> KernelError:
    """The error for ``-k FILE`` without ``:NAME``: it lists what the file holds."""
    path = Path(path)
    return KernelError(f"{path} is a model file; name a layer as {path}:NAME ({_names_hint(path)})")
