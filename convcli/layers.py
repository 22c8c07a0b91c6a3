"""What a trained CNN layer brings besides its weights: layout, groups, geometry, input scaling, activation.

This module is pure (numpy only, no file access); reading model files is
:mod:`convcli.modelfiles`.

**Layouts.** convcli banks are channels-last ``(F, kh, kw, C)``; networks
store channels-first weights. A forward layer (PyTorch ``Conv2d``, ONNX
``Conv``) holds ``W`` of shape ``(F, C/G, kh, kw)``, a transposed one
(``ConvTranspose2d`` / ``ConvTranspose``) ``(C, F/G, kh, kw)``. Both become a
grouped convcli bank ``K`` of shape ``(F, kh, kw, C/G)`` (see
:func:`convcli.conv.conv2d` ``groups``)::

    forward:     K[f, m, n, c] = W[f, c, m, n]
    transposed:  K[g·F/G + f, m, n, c] = W[g·C/G + c, f, m, n]      (group g)

**Groups.** For a forward tensor ``G = C_image / W.shape[1]`` (it must
divide); for a transposed tensor ``W.shape[0]`` must equal ``C_image`` and
``G`` is 1 unless given (the shape does not tell it). ONNX nodes carry their
own ``group``; an explicit ``groups`` always wins.

**Input normalisation** (as networks are trained)::

    x' = (x / scale − mean[c]) / std[c]      scale = 255 (8-bit), 65535 (16-bit), 1 (float)

**Activation**: ``relu(x) = max(x, 0)``, applied after the bias.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from convcli.errors import KernelError, OptionError, ShapeError
from convcli.kernels import Kernel, KernelBank

__all__ = [
    "ACTIVATIONS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LAYER_OPTIONS",
    "LayerPlan",
    "ModelLayer",
    "NormalizedSource",
    "activate",
    "dense_grouped_bank",
    "expand_groups",
    "normalize",
    "parse_normalize",
    "plan_layer",
    "relu",
    "to_bank_layout",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ACTIVATIONS = ("none", "relu")
_PRESET_NORMALIZE = {"imagenet": (IMAGENET_MEAN, IMAGENET_STD)}


# --- layouts and groups ----------------------------------------------------------------


def to_bank_layout(weights: np.ndarray, *, transposed: bool = False, groups: int = 1) -> np.ndarray:
    """PyTorch-layout conv weights → convcli grouped bank ``(F, kh, kw, C/G)``.

    Parameters
    ----------
    weights : ndarray, shape (F, C/G, kh, kw) or, transposed, (C, F/G, kh, kw)
    transposed : bool
        The tensor belongs to a transposed convolution.
    groups : int
        G; for a transposed tensor ``C`` must be a multiple of it.

    Returns
    -------
    ndarray, shape (F, kh, kw, C/G)
        A new C-contiguous array of ``weights``' dtype (formulas in the module notes).

    Raises
    ------
    KernelError
        When ``weights`` is not 4-D, or (transposed) ``C`` is not a multiple of ``groups``.
    """
    array = np.asarray(weights)
    if array.ndim != 4:
        raise KernelError(f"a conv weight must be 4-D (F, C/G, kh, kw), got shape {array.shape}")
    if groups < 1:
        raise KernelError(f"`groups` must be a positive integer, got {groups}")
    if not transposed:
        return np.ascontiguousarray(array.transpose(0, 2, 3, 1))
    in_channels, per_group, kh, kw = array.shape
    if in_channels % groups:
        raise KernelError(
            f"a transposed weight of shape {array.shape} has C={in_channels} input channels, "
            f"not a multiple of groups={groups}"
        )
    split = array.reshape(groups, in_channels // groups, per_group, kh, kw)
    return np.ascontiguousarray(
        split.transpose(0, 2, 3, 4, 1).reshape(groups * per_group, kh, kw, in_channels // groups)
    )


def expand_groups(bank: np.ndarray, groups: int) -> np.ndarray:
    """A grouped bank ``(F, kh, kw, C/G)`` as an equivalent dense ``(F, kh, kw, C)`` bank.

    ``D[f, m, n, g·C/G + c] = K[f, m, n, c]`` for filter ``f`` of group
    ``g = f // (F/G)``, zeros elsewhere (block-diagonal), so that
    ``conv2d(x, D, channels='sum') == conv2d(x, K, groups=G)`` (and likewise
    transposed): a way to run a grouped layer through any code that knows
    only the ``sum`` channel mode (e.g. a band-streaming renderer), at G
    times the multiply-adds.

    Raises
    ------
    KernelError
        When ``bank`` is not 4-D or G does not divide F.
    """
    array = np.asarray(bank)
    if array.ndim != 4:
        raise KernelError(f"a grouped bank must be (F, kh, kw, C/G), got shape {array.shape}")
    n_filters, kh, kw, per_group = array.shape
    if groups < 1 or n_filters % groups:
        raise KernelError(f"groups={groups} does not divide the bank's F={n_filters} filters")
    dense = np.zeros((n_filters, kh, kw, per_group * groups), dtype=array.dtype)
    step = n_filters // groups
    for group in range(groups):
        dense[group * step:(group + 1) * step, :, :, group * per_group:(group + 1) * per_group] = \
            array[group * step:(group + 1) * step]
    return dense


def dense_grouped_bank(bank: Any, groups: int, channels: int) -> np.ndarray:
    """A bank meant for ``groups=G`` on a C-channel image as a dense ``channels='sum'`` bank.

    ``bank`` is ``(F, kh, kw, C/G)`` or ``(F, kh, kw)`` (the same weights on
    every channel of a group); the result is :func:`expand_groups` of it,
    ``(F, kh, kw, C)``.

    Raises
    ------
    ShapeError
        When G does not divide C and F, or the bank's last axis is not C/G.
    """
    weights = np.asarray(bank, dtype=np.float64)
    if weights.ndim == 2:
        weights = weights[None]
    n_filters = weights.shape[0]
    if groups < 1 or channels % groups or n_filters % groups:
        raise ShapeError(
            f"--groups {groups} must divide the image's C={channels} channels and the bank's "
            f"F={n_filters} filters"
        )
    per_group = channels // groups
    if weights.ndim == 3:
        weights = np.repeat(weights[..., None], per_group, axis=3)
    if weights.ndim != 4 or weights.shape[3] != per_group:
        raise ShapeError(
            f"--groups {groups} on C={channels} channels needs filters of C/G={per_group} channels, "
            f"the bank has shape {weights.shape}"
        )
    return expand_groups(weights, groups)


def _onnx_same_pads(size: int, kernel: int, stride: int, dilation: int, lower: bool,
                    transposed: bool, output_padding: int) -> tuple[int, int]:
    """ONNX ``auto_pad`` SAME_UPPER/SAME_LOWER pads ``(begin, end)`` for one axis.

    Forward: ``out = ceil(size/s)``, ``total = max((out − 1)·s + k_eff − size, 0)``.
    Transposed: ``out = size·s``, ``total = (size − 1)·s + output_padding + k_eff − out``.
    UPPER puts the odd pixel at the end, LOWER at the beginning.
    """
    k_eff = dilation * (kernel - 1) + 1
    if transposed:
        total = max((size - 1) * stride + output_padding + k_eff - size * stride, 0)
    else:
        out = math.ceil(size / stride)
        total = max((out - 1) * stride + k_eff - size, 0)
    small, large = total // 2, total - total // 2
    return (large, small) if lower else (small, large)


@dataclass(frozen=True, eq=False)
class ModelLayer:
    """One convolution layer read from a model file.

    Attributes
    ----------
    source : str
        ``FILE:NAME`` as given, for messages.
    name : str
        The tensor or node name inside the file.
    weights : ndarray
        PyTorch layout, float32 (float64 when stored so): ``(F, C/G, kh, kw)``,
        or ``(C, F/G, kh, kw)`` when ``transposed``. Read-only.
    bias : ndarray or None
        One value per output channel, when the file has it.
    transposed : bool
        A ``ConvTranspose`` node (tensor files: ``False``; the caller may
        reinterpret with ``transposed=True``).
    groups : int or None
        G when the file states it (ONNX ``group``), else ``None`` (inferred).
    geometry : dict
        ONNX attributes as convcli options: ``stride``, ``dilation`` (pairs),
        ``padding`` (``(top, bottom, left, right)``, ``"valid"``, or the
        strings ``"same_upper"``/``"same_lower"`` resolved per image by
        :meth:`conv_options`), ``output_padding`` (transposed). Empty for
        plain tensors.
    """

    source: str
    name: str
    weights: np.ndarray
    bias: np.ndarray | None = None
    transposed: bool = False
    groups: int | None = None
    geometry: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        weights = np.array(self.weights)
        if weights.ndim != 4:
            raise KernelError(
                f"{self.source}: shape {weights.shape} is not a 4-D conv weight (F, C/G, kh, kw)"
            )
        if weights.dtype.kind != "f":
            weights = weights.astype(np.float32)
        if min(weights.shape) < 1:
            raise KernelError(f"{self.source}: the conv weight is empty, shape {weights.shape}")
        if not np.isfinite(weights).all():
            raise KernelError(f"{self.source}: the conv weight holds NaN or inf")
        weights.setflags(write=False)
        object.__setattr__(self, "weights", weights)
        if self.bias is not None:
            bias = np.array(self.bias, dtype=np.float64).ravel()
            bias.setflags(write=False)
            object.__setattr__(self, "bias", bias)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """The stored (PyTorch-layout) weight shape."""
        return tuple(self.weights.shape)  # type: ignore[return-value]

    def resolve_groups(self, channels: int, *, transposed: bool | None = None,
                       groups: int | None = None) -> int:
        """G for an image of ``channels`` channels (module notes); checks the channel counts.

        Raises
        ------
        ShapeError
            When the image channels do not fit the weight and G.
        """
        transposed = self.transposed if transposed is None else transposed
        groups = groups if groups is not None else self.groups
        first, second = self.shape[:2]
        if groups is not None and groups < 1:
            raise ShapeError(f"`groups` must be a positive integer, got {groups}")
        if transposed:
            if first != channels:
                raise ShapeError(
                    f"{self.source}: the transposed layer takes C={first} input channels "
                    f"(weight {self.shape} = (C, F/G, kh, kw)), the image has C={channels}"
                )
            groups = groups or 1
            if channels % groups:
                raise ShapeError(
                    f"{self.source}: groups={groups} does not divide the image's C={channels} channels"
                )
            return groups
        if groups is None:
            if channels % second:
                raise ShapeError(
                    f"{self.source}: the layer takes C/G={second} channels per group "
                    f"(weight {self.shape} = (F, C/G, kh, kw)); the image's C={channels} is not a "
                    "multiple of it"
                )
            groups = channels // second
        if groups * second != channels:
            raise ShapeError(
                f"{self.source}: groups={groups} × C/G={second} = {groups * second} channels, "
                f"the image has C={channels}"
            )
        if first % groups:
            raise ShapeError(
                f"{self.source}: F={first} filters do not split into groups={groups}"
            )
        return groups

    def bank(self, *, transposed: bool | None = None, groups: int = 1) -> np.ndarray:
        """The weights as a convcli grouped bank ``(F, kh, kw, C/G)`` (:func:`to_bank_layout`)."""
        transposed = self.transposed if transposed is None else transposed
        return to_bank_layout(self.weights, transposed=transposed, groups=groups)

    @property
    def label(self) -> str:
        """A file-name-safe base label: ``conv1.weight`` → ``conv1``, ``/l1/Conv`` → ``l1-Conv``."""
        base = self.name[: -len(".weight")] if self.name.endswith(".weight") else self.name
        base = re.sub(r"[^A-Za-z0-9_.+=-]+", "-", base).strip("-._+=")
        return base or "layer"

    def to_bank(self, *, transposed: bool | None = None, groups: int | None = None) -> KernelBank:
        """The layer as a :class:`~convcli.kernels.KernelBank` of F kernels ``(kh, kw, C/G)``.

        Kernel ``f`` is output channel ``f`` (labels ``conv1-00``, ``conv1-01``, …).
        A transposed layer needs G for its layout (``groups``, else the
        layer's own, else 1); a forward layer's layout does not depend on G.
        With ``transposed`` different from the layer's own, the returned bank's
        layer is a copy marked so.
        """
        transposed = self.transposed if transposed is None else transposed
        groups = groups or self.groups or 1
        layer = self if transposed == self.transposed else replace(self, transposed=transposed)
        bank = layer.bank(groups=groups if transposed else 1)
        width = len(str(bank.shape[0] - 1))
        kernels = tuple(
            Kernel(f"{self.label}-{index:0{width}d}", weights, f"{self.source} filter {index}")
            for index, weights in enumerate(bank)
        )
        return KernelBank(self.label, kernels, layer=layer)

    def conv_options(self, image_shape: Sequence[int]) -> dict[str, Any]:
        """The layer's geometry as keyword arguments of :func:`convcli.conv.conv2d` /
        :func:`~convcli.conv.conv_transpose2d`, for an image of ``(H, W[, C])``.

        ONNX SAME_UPPER / SAME_LOWER become explicit ``(top, bottom, left, right)``
        pads (see :func:`_onnx_same_pads`); only the attributes the file states
        are returned (``{}`` for a plain tensor).
        """
        options = {key: value for key, value in self.geometry.items() if key != "padding"}
        padding = self.geometry.get("padding")
        if isinstance(padding, str) and padding.startswith("same_"):
            stride = self.geometry.get("stride", (1, 1))
            dilation = self.geometry.get("dilation", (1, 1))
            out_pad = self.geometry.get("output_padding", (0, 0))
            lower = padding == "same_lower"
            pads = [
                _onnx_same_pads(int(image_shape[axis]), self.shape[2 + axis], stride[axis],
                                dilation[axis], lower, self.transposed, out_pad[axis])
                for axis in (0, 1)
            ]
            options["padding"] = (*pads[0], *pads[1])
        elif padding is not None:
            options["padding"] = padding
        return options


# --- a layer's settings for one image: file defaults, explicit options winning ---------------

#: The options a model layer may supply defaults for (the CLI's -s, -p, -d, --output-padding,
#: --bias, --border, --transpose, --groups).
LAYER_OPTIONS = ("stride", "padding", "dilation", "output_padding", "bias", "border", "transpose",
                 "groups")


@dataclass(frozen=True)
class LayerPlan:
    """How to run a model layer on one image (:func:`plan_layer`).

    Attributes
    ----------
    weights : ndarray, shape (F, kh, kw, C/G)
        convcli grouped layout.
    labels : list of str
        One per output channel (``conv1-00``, …).
    groups : int
    transposed : bool
    options : dict
        Keyword arguments for :func:`convcli.conv.conv2d` (``stride``,
        ``padding``, ``dilation``, ``bias``, ``border``) or
        :func:`~convcli.conv.conv_transpose2d` (``output_padding`` instead of
        ``border``), with ``groups``.
    note : str or None
        One line naming the explicit options that replaced the layer's own values.
    """

    weights: np.ndarray
    labels: list[str]
    groups: int
    transposed: bool
    options: dict[str, Any]
    note: str | None


def _option_text(value: Any) -> str:
    if isinstance(value, (tuple, list, np.ndarray)):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in np.asarray(value).tolist())
    return f"{value:g}" if isinstance(value, float) else str(value)


def _same_value(first: Any, second: Any) -> bool:
    try:
        return bool(np.array_equal(np.asarray(first, dtype=object), np.asarray(second, dtype=object)))
    except (TypeError, ValueError):
        return first == second


def plan_layer(bank: KernelBank, image_shape: Sequence[int], given: Mapping[str, Any]) -> LayerPlan:
    """Combine a model layer's own settings with the options given explicitly.

    Defaults come from the file: ONNX attributes (stride, pads or auto_pad,
    dilation, output_padding, group, Conv vs ConvTranspose), the bias beside
    the weight, zero padding (``border='zero'``, as the network was trained)
    and G inferred from the image channels (:meth:`ModelLayer.resolve_groups`).
    Every key of ``given`` (a subset of :data:`LAYER_OPTIONS`, values already
    parsed, e.g. ``stride=(1, 1)``) wins; ``note`` names those that changed a
    value the file states.

    Parameters
    ----------
    bank : KernelBank
        A bank read from a model file (``bank.layer`` set).
    image_shape : (H, W) or (H, W, C)
    given : mapping
        The options the user typed.

    Raises
    ------
    KernelError
        ``bank`` is not a model layer, or an unknown key in ``given``.
    ShapeError
        Channels, groups or bias length that do not fit.
    """
    layer = bank.layer
    if layer is None:
        raise KernelError(f"kernel bank {bank.name!r} is not a model layer (FILE:TENSOR)")
    unknown = sorted(set(given) - set(LAYER_OPTIONS))
    if unknown:
        raise KernelError(f"plan_layer: unknown option(s) {', '.join(unknown)}")
    channels = int(image_shape[2]) if len(image_shape) > 2 else 1
    transposed = bool(given.get("transpose", layer.transposed))
    groups_given = given.get("groups")
    own = layer.to_bank(transposed=transposed, groups=groups_given)
    groups = own.layer.resolve_groups(channels, groups=groups_given)
    weights = own.stack()
    stated: dict[str, Any] = dict(own.layer.conv_options(image_shape))
    if not transposed:
        stated.pop("output_padding", None)
    if layer.bias is not None:
        if layer.bias.size != weights.shape[0]:
            raise ShapeError(
                f"{layer.source}: the bias has {layer.bias.size} values, the layer F={weights.shape[0]} "
                "outputs"
            )
        stated["bias"] = layer.bias
    if layer.groups is not None:
        stated["groups"] = layer.groups
    if layer.geometry:  # an ONNX node states Conv vs ConvTranspose; a tensor does not
        stated["transpose"] = layer.transposed
    options = {key: value for key, value in stated.items() if key not in ("groups", "transpose")}
    if not transposed:
        options["border"] = "zero"
    changed = []
    for key, value in given.items():
        if key in stated and not _same_value(value, stated[key]):
            changed.append(f"{key.replace('_', '-')} {_option_text(value)} (layer: "
                           f"{_option_text(stated[key])})")
        if key not in ("groups", "transpose"):
            options[key] = value
    if transposed:
        options.pop("border", None)
    note = (f"{layer.source}: explicit options win over the layer's own: {'; '.join(changed)}"
            if changed else None)
    options["groups"] = groups
    return LayerPlan(weights, own.labels, groups, transposed, options, note)


# --- input normalisation and activations ---------------------------------------------------


def _numbers(text: str, what: str) -> tuple[float, ...]:
    parts = [part.strip() for part in text.replace(" ", ",").split(",") if part.strip()]
    try:
        values = tuple(float(part) for part in parts)
    except ValueError:
        raise OptionError(f"`--normalize` {what} must be comma-separated numbers, got {text!r}") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise OptionError(f"`--normalize` {what} must be finite numbers, got {text!r}")
    return values


def parse_normalize(text: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``"MEAN;STD"`` (comma-separated per channel, or one value for all) or ``imagenet``.

    Example: ``"0.485,0.456,0.406;0.229,0.224,0.225"`` (= ``imagenet``),
    ``"0.5;0.5"`` (maps [0, 1] to [−1, 1]).

    Raises
    ------
    OptionError
        For another shape of text, non-numbers, or a standard deviation <= 0.
    """
    name = text.strip().lower()
    if name in _PRESET_NORMALIZE:
        return _PRESET_NORMALIZE[name]
    if text.count(";") != 1:
        raise OptionError(
            f"`--normalize` must be MEAN;STD (e.g. '0.485,0.456,0.406;0.229,0.224,0.225') or "
            f"{', '.join(_PRESET_NORMALIZE)}, got {text!r}"
        )
    mean_text, std_text = text.split(";")
    mean, std = _numbers(mean_text, "MEAN"), _numbers(std_text, "STD")
    if min(std) <= 0:
        raise OptionError(f"`--normalize` STD values must be > 0, got {std_text.strip()!r}")
    if len(mean) != len(std) and 1 not in (len(mean), len(std)):
        raise OptionError(
            f"`--normalize` needs as many MEAN as STD values (or one), got {len(mean)} and {len(std)}"
        )
    return mean, std


def _per_channel(values: Any, channels: int, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 1:
        return np.repeat(array, channels)
    if array.size != channels:
        raise ShapeError(
            f"`{what}` has {array.size} values but the image has C={channels} channels"
        )
    return array


def normalize(image: Any, mean: Any, std: Any, *, bit_depth: int | None = None) -> np.ndarray:
    """Scale an image to [0, 1] by its depth, then ``(x − mean[c]) / std[c]`` per channel.

    ``x' = (x / scale − mean[c]) / std[c]`` with ``scale = 2**bit_depth − 1``
    (255 for 8-bit, 65535 for 16-bit) or 1 for float input.

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, C)
    mean, std : float or sequence of C floats
    bit_depth : {None, 8, 16, 0}
        ``None`` reads it from the dtype (uint8 → 8, uint16 → 16, else float:
        no scaling); ``0`` forces no scaling.

    Returns
    -------
    ndarray, shape (H, W, C)
        float64 for float64 input, else float32.

    Raises
    ------
    ShapeError
        When ``mean``/``std`` have neither 1 nor C values, or ``std <= 0``.
    OptionError
        For another ``bit_depth``.
    """
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.dtype.kind not in "biuf":
        raise ShapeError(f"image must be real (H, W) or (H, W, C), got {array.dtype} {array.shape}")
    if bit_depth is None:
        bit_depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(array.dtype, 0)
    if bit_depth not in (0, 8, 16):
        raise OptionError(f"`bit_depth` must be 8, 16 or 0 (float), got {bit_depth!r}")
    scale = float(2 ** bit_depth - 1) if bit_depth else 1.0
    channels = array.shape[2]
    means = _per_channel(mean, channels, "mean")
    stds = _per_channel(std, channels, "std")
    if not (stds > 0).all():
        raise ShapeError(f"`std` values must be > 0, got {stds.tolist()}")
    dtype = np.float64 if array.dtype == np.float64 else np.float32
    out = array.astype(np.float64) / scale
    out = (out - means) / stds
    return out.astype(dtype)


class NormalizedSource:
    """A row source (``shape``, ``read_rows(start, stop)``) whose rows are normalised (:func:`normalize`).

    Wraps any object with the :class:`convcli.pipeline.sources.Source`
    interface, so a band-streaming renderer pads and filters normalised
    values (zero padding then means 0 *after* normalisation, as in PyTorch).
    The scale comes from the source's ``bit_depth`` (8 → 255, 16 → 65535,
    else 1). An alpha channel beyond the given C values (``channel_names``
    ending in ``A``) gets mean 0 and std 1 (only scaled). Other attributes
    are the wrapped source's; rows are float32 (float64 for a float64 source).

    Raises
    ------
    ShapeError
        When ``mean``/``std`` have neither 1 nor C values.
    """

    def __init__(self, source: Any, mean: Sequence[float], std: Sequence[float]) -> None:
        self._source = source
        channels = int(source.shape[2])
        names = tuple(getattr(source, "channel_names", ()))
        mean, std = list(np.ravel(mean)), list(np.ravel(std))
        if names and names[-1] == "A" and channels > 1:
            for values, fill in ((mean, 0.0), (std, 1.0)):
                if len(values) == channels - 1:
                    values.append(fill)
                elif len(values) == 1 and channels > 2:
                    values[:] = [values[0]] * (channels - 1) + [fill]
        self.mean = _per_channel(mean, channels, "--normalize MEAN")
        self.std = _per_channel(std, channels, "--normalize STD")
        depth = getattr(source, "bit_depth", 0)
        self._depth = depth if depth in (8, 16) else 0
        self.dtype = np.dtype(np.float64 if np.dtype(source.dtype) == np.float64 else np.float32)

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        """Normalised rows ``start .. stop − 1``: ``(stop − start, W, C)``."""
        rows = self._source.read_rows(start, stop)
        return normalize(rows, self.mean, self.std, bit_depth=self._depth).astype(self.dtype, copy=False)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)


def relu(values: Any) -> np.ndarray:
    """``max(x, 0)`` elementwise (a new array of the same dtype)."""
    return np.maximum(np.asarray(values), 0)


def activate(values: Any, activation: str) -> np.ndarray:
    """Apply ``activation`` (``none`` or ``relu``) to ``values``.

    Raises
    ------
    OptionError
        For another name.
    """
    if activation == "none":
        return np.asarray(values)
    if activation == "relu":
        return relu(values)
    raise OptionError(f"`activation` must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
