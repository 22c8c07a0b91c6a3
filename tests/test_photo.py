"""Photos as users expect them (issue 13): alpha, kernel kinds, display, border, formats, metadata, frames.

Each example of the issue's "Why" that the library can answer is computed here through the
library (``conv2d`` + :mod:`convcli.alpha` + :mod:`convcli.display`) and compared with the answer
the issue states, or with scipy / Pillow.
"""

from __future__ import annotations

import functools
import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from scipy import ndimage

from convcli import conv2d
from convcli.alpha import (
    alpha_weights,
    background_values,
    flatten,
    is_image_kernel,
    keep_alpha,
    keep_layout,
    kernel_kinds,
    parse_alpha_mode,
    parse_color,
    premultiply,
    prepare_input,
    unpremultiply,
)
from convcli.display import (
    DisplayMapping,
    MapStats,
    alpha_mapping,
    apply_mapping,
    map_stats,
    needs_stats,
    plan_display,
    sample_rows,
    to_pixels,
)
from convcli.errors import KernelError, OptionError
from convcli.kernels import gaussian
from convcli.presets import resolve_kernel

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"


def _keep(image: np.ndarray, bank, **geometry) -> tuple[np.ndarray, list]:
    """``--alpha keep`` through the library: premultiply, conv2d colour and alpha, keep_alpha."""
    colour, alpha = image[..., :-1], image[..., -1]
    premultiplied = premultiply(colour, alpha, 255)
    colour_maps = conv2d(premultiplied, bank, **geometry)
    alpha_maps = conv2d(alpha.astype(np.float32), alpha_weights(bank), **geometry)
    kinds = kernel_kinds(bank)
    return keep_alpha(colour_maps, alpha_maps, kinds, 255), keep_layout(kinds, colour.shape[2])


def _kept_pixels(kept: np.ndarray, group) -> np.ndarray:
    """One kernel's 8-bit RGBA (image kernel) or RGB (feature kernel) pixels."""
    colour = kept[:, :, group.start:group.start + group.count - group.has_alpha]
    pixels = to_pixels(colour, kind="image" if group.has_alpha else "feature")
    if not group.has_alpha:
        return pixels
    alpha = apply_mapping(kept[:, :, group.start + group.count - 1:group.start + group.count],
                          alpha_mapping(8))
    return np.concatenate([pixels, alpha], axis=2)


# ---------------------------------------------------------------------------
# alpha


ONE_BY_TWO = np.array([[[255, 0, 0, 0], [255, 255, 255, 255]]], np.uint8)


def test_keep_gives_the_alpha_weighted_answer_of_the_issue():
    kept, layout = _keep(ONE_BY_TWO, [[0.5, 0.5]], padding="valid")
    assert layout[0].has_alpha and layout[0].count == 4
    np.testing.assert_array_equal(_kept_pixels(kept, layout[0]), [[[255, 255, 255, 128]]])


def test_channel_mode_filters_alpha_as_a_plain_channel():
    """Today's `--alpha filter`, kept as `channel`: the hidden red bleeds in."""
    maps = conv2d(ONE_BY_TWO, [[0.5, 0.5]], padding="valid")
    np.testing.assert_array_equal(to_pixels(maps, kind="image"), [[[255, 128, 128, 128]]])
    assert parse_alpha_mode("filter") == "channel" == parse_alpha_mode(" Channel ")


def test_prepare_input_for_each_mode():
    rgba = ONE_BY_TWO
    keep = prepare_input(rgba, ("R", "G", "B", "A"), "keep", max_value=255)
    np.testing.assert_array_equal(keep.colour, [[[0, 0, 0], [255, 255, 255]]])
    np.testing.assert_array_equal(keep.alpha[..., 0], [[0, 255]])
    assert keep.channel_names == ("R", "G", "B")
    drop = prepare_input(rgba, ("R", "G", "B", "A"), "drop", max_value=255, background="#0000ff")
    np.testing.assert_array_equal(drop.colour, [[[0, 0, 255], [255, 255, 255]]])
    assert drop.alpha is None
    channel = prepare_input(rgba, ("R", "G", "B", "A"), "filter", max_value=255)
    assert channel.colour is rgba and channel.channel_names == ("R", "G", "B", "A")
    gray = np.zeros((2, 2, 1), np.uint16)
    assert prepare_input(gray, ("L",), "keep", max_value=65535).colour is gray
    la = np.array([[[1000, 0], [1000, 65535]]], np.uint16)
    np.testing.assert_array_equal(prepare_input(la, ("L", "A"), "keep", max_value=65535).colour,
                                  [[[0], [1000]]])


@pytest.mark.parametrize("text", ["", "none", "premultiply", "keep,drop"])
def test_parse_alpha_mode_rejects(text):
    with pytest.raises(OptionError, match="--alpha"):
        parse_alpha_mode(text)


def _disc_on_hidden_red(size: int = 40, radius: float = 10.0) -> np.ndarray:
    """An opaque green disc on a transparent background whose hidden colour is red."""
    rows, cols = np.mgrid[:size, :size]
    inside = (rows - size / 2) ** 2 + (cols - size / 2) ** 2 <= radius ** 2
    image = np.zeros((size, size, 4), np.uint8)
    image[..., 0] = 255  # hidden red everywhere
    image[inside] = (0, 255, 0, 255)
    return image


def test_blurred_disc_keeps_its_colour_where_visible():
    """The green-ring case: with `keep`, every visible pixel is the disc's green."""
    image = _disc_on_hidden_red()
    bank = gaussian(sigma=2.0)
    kept, layout = _keep(image, bank, padding="same", border="reflect")
    pixels = _kept_pixels(kept, layout[0])
    visible = pixels[..., 3] > 0
    assert visible.sum() > (image[..., 3] > 0).sum()  # the blur spreads the disc (a soft edge)
    np.testing.assert_array_equal(pixels[visible][:, :3], np.broadcast_to([0, 255, 0], (visible.sum(), 3)))
    expected_alpha = ndimage.correlate(image[..., 3].astype(np.float64), bank, mode="mirror")
    np.testing.assert_allclose(pixels[..., 3], np.rint(expected_alpha), atol=1)
    # the plain-channel way (today's default path) shows the ring: red bleeds into visible pixels
    plain = to_pixels(conv2d(image, bank, padding="same", border="reflect"), kind="image")
    assert (plain[plain[..., 3] > 0][:, 0] > 64).any()


def test_drop_flattens_over_black_or_a_background():
    image = _disc_on_hidden_red().astype(np.float32)
    black = flatten(image[..., :3], image[..., 3], 255)
    np.testing.assert_array_equal(black[image[..., 3] == 0], 0)  # the hidden red is gone
    white = flatten(image[..., :3], image[..., 3], 255, background_values("white", 3, 255))
    np.testing.assert_array_equal(white[image[..., 3] == 0], 255)
    np.testing.assert_array_equal(white[image[..., 3] == 255], np.broadcast_to([0, 255, 0], (
        int((image[..., 3] == 255).sum()), 3)))
    half = flatten(np.array([[[200.0]]]), np.array([[32767.5]]), 65535, background_values("100", 1, 65535))
    np.testing.assert_allclose(half, [[[(200 + 100 * 257) / 2]]], rtol=1e-6)


def test_feature_kernels_stay_premultiplied_and_opaque():
    image = _disc_on_hidden_red()
    sobel = resolve_kernel("sobel").stack()
    kept, layout = _keep(image, sobel, padding="same", border="reflect")
    assert [group.has_alpha for group in layout] == [False, False]
    assert kept.shape[2] == 6
    premultiplied = image[..., :3] * (image[..., 3:] / 255.0)
    expected = ndimage.correlate(premultiplied[..., 1], sobel[0], mode="mirror")
    np.testing.assert_allclose(kept[..., 1], expected, atol=1e-3)


def test_mixed_bank_layout_and_unpremultiply_of_transparent_windows():
    bank = np.stack([np.full((3, 3), 1 / 9), resolve_kernel("sobel-x").stack()[0]])
    assert kernel_kinds(bank) == ("image", "feature")
    assert [tuple(g) for g in keep_layout(kernel_kinds(bank), 3)] == [(0, 4, True), (4, 3, False)]
    colour = np.array([[[10.0, 20.0, 30.0], [1e-9, 0.0, 0.0]]])
    result = unpremultiply(colour, np.array([[127.5, 1e-7]]), 255)
    np.testing.assert_allclose(result, [[[20.0, 40.0, 60.0], [0.0, 0.0, 0.0]]])


@pytest.mark.parametrize(("weights", "kind"), [
    (gaussian(sigma=2.0), "image"),
    (resolve_kernel("sharpen").stack()[0], "image"),
    (resolve_kernel("identity").stack()[0], "image"),
    (np.full((7, 7), 1 / 49), "image"),
    (resolve_kernel("sobel-x").stack()[0], "feature"),
    (resolve_kernel("emboss").stack()[0], "feature"),
    (resolve_kernel("laplacian").stack()[0], "feature"),
    ([[0.5, 0.5 + 1e-3]], "feature"),
])
def test_kernel_kinds(weights, kind):
    assert is_image_kernel(weights) == (kind == "image")
    assert kernel_kinds(weights) == (kind,)


def test_kernel_kinds_per_kernel_of_a_bank_and_full_banks():
    assert kernel_kinds(resolve_kernel("kirsch").stack()) == ("feature",) * 8
    full = np.zeros((1, 1, 1, 3))
    full[0, 0, 0] = (0.299, 0.587, 0.114)  # luminance: sums to 1 over the channels
    assert kernel_kinds(full, "sum") == ("image",)
    assert kernel_kinds(full, "depthwise") == ("feature",)  # each channel alone: mean 1/3
    with pytest.raises(KernelError):
        is_image_kernel([[np.nan]])


@pytest.mark.parametrize(("text", "rgb"), [
    ("white", (255, 255, 255)), ("Black", (0, 0, 0)), ("#ff8000", (255, 128, 0)),
    ("#f80", (255, 136, 0)), ("128", (128, 128, 128)), ("gray:64", (64, 64, 64)),
    ("50%", (127.5, 127.5, 127.5)), ("10, 20 ,30", (10, 20, 30)),
])
def test_parse_color(text, rgb):
    assert parse_color(text) == pytest.approx(rgb)


@pytest.mark.parametrize("text", ["", "whit", "#12345", "300", "1,2", "-1", "nan", "#gg0000", "5%,1"])
def test_parse_color_rejects(text):
    with pytest.raises(OptionError, match="--background"):
        parse_color(text)


def test_background_of_a_gray_image_is_the_luminance():
    np.testing.assert_allclose(background_values("red", 1, 255), [0.299 * 255])
    np.testing.assert_allclose(background_values("#808080", 3, 1.0), [128 / 255] * 3)


# ---------------------------------------------------------------------------
# display


def test_emboss_maps_a_flat_region_to_128():
    emboss = resolve_kernel("emboss")
    weights = emboss.stack()
    assert weights.sum() == 0 and kernel_kinds(weights) == ("feature",)
    image = np.full((9, 11, 3), 173, np.uint8)
    image[6:, 7:] = 20  # a step: a relief on one corner, flat elsewhere
    maps = conv2d(image, weights, padding="same", border="reflect")
    pixels = to_pixels(maps, hint=emboss.display, kind="feature")
    np.testing.assert_array_equal(pixels[:3, :4], 128)
    assert pixels.min() < 128 or pixels.max() > 128


def test_sharpen_undershoot_is_black():
    image = np.full((5, 5, 3), 200, np.uint8)
    image[2, 2] = (10, 30, 40)  # a dark pixel in a bright field: sharpen goes below 0 there
    maps = conv2d(image, resolve_kernel("sharpen").stack(), padding="same", border="reflect")
    assert (maps[2, 2] < 0).all()
    np.testing.assert_array_equal(to_pixels(maps, kind="image")[2, 2], [0, 0, 0])
    assert (to_pixels(maps)[2, 2] > 100).all()  # the old unknown-kind rule folded it to |x|


def test_a_bias_offsets_and_clips():
    """`-k "-1,1" -p valid --bias 128` on [200, 0]: raw −72 is written as 0."""
    maps = conv2d(np.array([[200.0, 0.0]]), [[-1.0, 1.0]], padding="valid", bias=128)
    assert maps[0, 0, 0] == -72
    assert to_pixels(maps, kind="feature", bias=True)[0, 0, 0] == 0
    assert to_pixels(maps, kind="feature")[0, 0, 0] == 72  # without the bias flag: |x|


def test_kirsch_max_saturates_at_most_one_percent():
    with Image.open(SAMPLES / "camera.png") as image:
        camera = np.asarray(image.convert("L"))
    bank = resolve_kernel("kirsch").stack()
    maps = conv2d(camera, bank, padding="same", border="reflect").max(axis=2, keepdims=True)
    assert maps.min() >= 0 and maps.max() > 255
    pixels = to_pixels(maps, kind="feature")
    assert (pixels == 255).mean() <= 0.01
    peak = np.percentile(maps, 99)
    np.testing.assert_allclose(pixels, np.clip(np.rint(maps * (254.5 / peak)), 0, 255), atol=1)
    assert (to_pixels(maps) == 255).mean() > 0.1  # the old clip rule


def test_float_unit_images_are_scaled_to_the_output_range(tmp_path):
    import tifffile

    from convcli import imageio

    ramp = np.linspace(0, 1, 48, dtype=np.float32).reshape(6, 8)
    path = tmp_path / "ramp.tiff"
    tifffile.imwrite(path, ramp)
    loaded = imageio.read_image(path)
    assert loaded.bit_depth == 32 and loaded.float_unit
    maps = conv2d(loaded.array, [[1.0]])
    pixels = to_pixels(maps, kind="image", float_unit=loaded.float_unit)
    np.testing.assert_array_equal(pixels[..., 0], np.rint(ramp * 255))
    pixels16 = to_pixels(maps, bit_depth=16, kind="image", float_unit=True)
    np.testing.assert_array_equal(pixels16[..., 0], np.rint(ramp.astype(np.float64) * 65535))
    assert to_pixels(maps, kind="image").max() == 1  # what the issue saw: all black
    edges = conv2d(loaded.array, [[-1.0, 1.0]], padding="same", border="reflect")  # |x| ≤ 1/47
    np.testing.assert_array_equal(to_pixels(edges, kind="feature", float_unit=True),
                                  np.rint(np.abs(edges) * 255))
    tifffile.imwrite(tmp_path / "big.tiff", ramp * 2)
    assert not imageio.read_image(tmp_path / "big.tiff").float_unit


def test_flat_grey_blur_with_reflect_border_stays_flat():
    image = np.full((16, 20, 3), 200, np.uint8)
    maps = conv2d(image, gaussian(sigma=2.0), padding="same", border="reflect")
    np.testing.assert_array_equal(to_pixels(maps, kind="image"), 200)
    dark = to_pixels(conv2d(image, gaussian(sigma=2.0), padding="same"), kind="image")
    assert dark[0, 0, 0] < 100  # PyTorch's zero border: the dark frame of the issue


def _stats(low: float, high: float, peak: float = 0.0) -> MapStats:
    return MapStats(low, high, False, np.array([peak]))


def test_plan_display_rules():
    m = plan_display(_stats(-10.0, 500.0, peak=300.0), kind="feature")
    assert m == DisplayMapping("abs", 0.0, 254.5 / 300, 255)
    assert plan_display(_stats(-10.0, 500.0, peak=300.0)).multiplier == 255 / 300  # kind not known
    assert plan_display(_stats(-10.0, 200.0), kind="feature").multiplier == 1.0
    assert plan_display(_stats(-10.0, 500.0), kind="image") == DisplayMapping("clip", 0.0, 1.0, 255)
    assert plan_display(_stats(0.0, 500.0, peak=100.0), kind="feature").multiplier == 1.0
    assert plan_display(_stats(0.0, 500.0, peak=400.0), kind=None).multiplier == 1.0
    offset16 = plan_display(_stats(-3.0, 3.0), bit_depth=16, hint="offset:128", kind="feature")
    assert offset16 == DisplayMapping("clip", 128 * 257, 1.0, 65535)
    unit = plan_display(_stats(-0.5, 0.5), hint="offset:128", kind="feature", float_unit=True)
    assert unit.shift * unit.multiplier == 128 and unit.multiplier == 255
    with pytest.raises(OptionError, match="kind"):
        plan_display(_stats(0.0, 1.0), kind="edge")
    assert needs_stats("auto") and needs_stats("minmax", kind="image") and needs_stats(kind="feature")
    assert not needs_stats(kind="image") and not needs_stats(bias=True)
    assert not needs_stats(hint="offset:128") and not needs_stats("clip")


@given(arrays(np.float32, st.tuples(st.integers(1, 9), st.integers(1, 6), st.integers(1, 3)),
              elements=st.floats(-1e5, 1e5, width=32) | st.sampled_from([np.nan, np.inf, -np.inf])),
       st.sampled_from(["image", "feature", None]), st.sampled_from(["auto", "minmax", "offset:7"]),
       st.integers(1, 4), st.booleans())
def test_banded_display_equals_whole_image(maps, kind, scale, band_rows, float_unit):
    """Statistics gathered band by band (as the streaming job does), then each band mapped:
    the same pixels as to_pixels on the whole map."""
    whole = to_pixels(maps, kind=kind, scale=scale, float_unit=float_unit)
    sampled = sample_rows(maps.shape[0], maps.shape[1] * maps.shape[2])
    low, high, has_nan, samples = np.inf, -np.inf, False, []
    for start in range(0, maps.shape[0], band_rows):
        band = maps[start:start + band_rows]
        flat = band.reshape(-1)
        has_nan |= bool(np.isnan(flat).any())
        flat = np.where(np.isnan(flat), 0, flat)
        finite = flat[np.isfinite(flat)]
        if finite.size:
            low, high = min(low, float(finite.min())), max(high, float(finite.max()))
        mine = [row - start for row in range(start, start + len(band)) if row in sampled]
        samples.append(np.abs(np.where(np.isnan(band[mine]), 0, band[mine])).reshape(-1))
    stats = MapStats(low if low <= high else None, high if low <= high else None, has_nan,
                     np.concatenate(samples))
    assert stats.peak == map_stats(maps).peak
    mapping = plan_display(stats, scale=scale, kind=kind, float_unit=float_unit)
    out = np.empty(maps.shape, np.uint8)
    for start in range(0, maps.shape[0], band_rows):
        apply_mapping(maps[start:start + band_rows], mapping, out=out[start:start + band_rows])
    np.testing.assert_array_equal(out, whole)


def test_sample_rows_spread_over_the_map_and_hold_about_4_mi_values():
    assert sample_rows(10, 3) == range(10)  # small maps: every row
    assert sample_rows(2**10, 2**10) == range(2**10)  # exactly 2**20 values
    rows = sample_rows(3000, 12000)  # a 12-Mpx RGB map
    assert rows.step == 35 and rows.start == 17 and rows[-1] >= 3000 - 35
    assert 1.0e6 <= len(rows) * 12000 <= 2**20
    wide = sample_rows(7, 5_000_000)  # one row is more than the budget: every 7th row, one row
    assert list(wide) == [3]


@given(arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 5), st.integers(1, 3)),
              elements=st.floats(0, 1e4, width=32)),
       st.sampled_from([8, 16]))
def test_feature_maps_shown_as_abs_equal_the_clip_rule_on_non_negative_maps(maps, bits):
    """``auto`` maps every feature map with |x| (and q): on non-negative values, what clip gave."""
    stats = map_stats(maps)
    mapping = plan_display(stats, kind="feature", bit_depth=bits)
    assert mapping.kind == "abs"
    clipped = DisplayMapping("clip", mapping.shift, mapping.multiplier, mapping.max_value)
    np.testing.assert_array_equal(apply_mapping(maps, mapping), apply_mapping(maps, clipped))


@given(st.integers(1, 300_000), st.sampled_from(["normal", "few levels", "sparse", "descending", "with inf"]),
       st.sampled_from([np.float32, np.float64]), st.integers(0, 2**31))
def test_peak_of_sample_is_numpys_99th_percentile(n, kind, dtype, seed):
    """The top-values shortcut of large samples (a threshold, then a partition) gives
    numpy.percentile(…, 99) of the finite values, ties and all, and leaves the sample as it was."""
    from convcli.display import peak_of_sample

    rng = np.random.default_rng(seed)
    if kind == "normal":
        sample = np.abs(rng.standard_normal(n)) * 50
    elif kind == "few levels":
        sample = rng.integers(0, 4, n).astype(float)
    elif kind == "sparse":
        sample = np.zeros(n)
        sample[rng.integers(0, n, max(1, n // 60))] = 9.0
    elif kind == "descending":
        sample = np.sort(rng.random(n))[::-1]
    else:
        sample = rng.random(n)
        sample[rng.integers(0, n, max(1, n // 20))] = np.inf
    sample = np.ascontiguousarray(sample, dtype=dtype)
    before = sample.copy()
    finite = sample[np.isfinite(sample)]
    expected = float(np.percentile(finite, 99)) if finite.size else 0.0
    assert peak_of_sample(sample) == pytest.approx(expected, rel=1e-6, abs=1e-9)
    np.testing.assert_array_equal(sample, before)


def test_only_the_percentile_decides_a_feature_map_and_needs_range_says_so():
    from convcli.display import needs_range

    wide = MapStats(None, None, False, np.array([0.0, 300.0, 900.0]))  # range not known
    assert plan_display(wide, kind="feature") == plan_display(
        MapStats(-900.0, 900.0, False, wide.sample), kind="feature")
    assert needs_stats(kind="feature") and not needs_range(kind="feature")
    assert needs_range(kind=None) and needs_range("minmax", kind="feature")
    assert not needs_range(kind="image") and not needs_range(hint="offset:128")


# ---------------------------------------------------------------------------
# formats and metadata


@functools.cache
def _icc() -> bytes:
    """An sRGB ICC profile (made once: it carries its creation time)."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "convcli-test-camera"  # Make
    return exif.tobytes()


def _photo_jpeg(tmp_path, orientation: int = 1) -> tuple:
    rows, cols = np.mgrid[:12, :20]
    array = np.stack([rows * 20, cols * 12, 255 - rows * 10 - cols * 5], axis=2).astype(np.uint8)
    path = tmp_path / "photo.jpg"
    Image.fromarray(array).save(path, quality=95, icc_profile=_icc(), exif=_exif(orientation),
                                dpi=(300, 300))
    return path, array


@pytest.mark.parametrize(("suffix", "fmt"), [(".jpg", "jpeg"), (".JPEG", "jpeg"), (".webp", "webp"),
                                             (".png", "png"), (".tif", "tiff"), (".bmp", None)])
def test_format_from_suffix(suffix, fmt):
    from convcli.imageio import format_from_suffix

    assert format_from_suffix(f"out{suffix}") == fmt


def test_metadata_is_read_and_exif_orientation_reset(tmp_path):
    from convcli.imageio import read_image

    path, _ = _photo_jpeg(tmp_path, orientation=6)
    loaded = read_image(path)
    assert loaded.shape == (20, 12, 3)  # rotated upright
    assert loaded.metadata["icc_profile"] == _icc()
    assert loaded.metadata["dpi"] == (300.0, 300.0)
    exif = Image.Exif()
    exif.load(loaded.metadata["exif"])
    assert exif[0x0112] == 1 and exif[0x010F] == "convcli-test-camera"


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "png", "tiff"])
def test_round_trip_keeps_icc_dpi_and_exif(tmp_path, fmt):
    from convcli.imageio import read_image, save_image

    path, _ = _photo_jpeg(tmp_path, orientation=8)
    loaded = read_image(path)
    target = tmp_path / f"out.{fmt}"
    pixels = to_pixels(conv2d(loaded.pixels, [[1.0]]), kind="image")
    save_image(target, pixels, format=fmt, metadata=loaded.metadata)
    with Image.open(target) as back:
        assert back.format == fmt.upper()
        assert back.info.get("icc_profile") == _icc()
        if fmt != "webp":  # WebP has no resolution field
            assert tuple(round(v, 2) for v in back.info["dpi"]) == (300, 300)
        if fmt == "jpeg":
            assert back.info["dpi"] == (300, 300)  # exactly, not 299
        if fmt != "tiff":  # TIFF outputs carry no EXIF block
            assert back.getexif()[0x0112] == 1
            assert back.getexif()[0x010F] == "convcli-test-camera"
        decoded = np.asarray(back.convert("RGB"))
    error = np.abs(decoded.astype(int) - pixels.astype(int))
    assert error.max() == 0 if fmt in ("png", "tiff") else error.mean() < 3
    stripped = tmp_path / f"stripped.{fmt}"
    save_image(stripped, pixels, format=fmt, metadata=loaded.metadata, strip=True)
    with Image.open(stripped) as back:
        assert "icc_profile" not in back.info and "exif" not in back.info


def test_png_text_chunks_and_dpi_carry_into_png_and_tiff(tmp_path):
    import tifffile
    from PIL import PngImagePlugin

    from convcli.imageio import read_image, save_image

    info = PngImagePlugin.PngInfo()
    info.add_text("Description", "a test card")
    info.add_text("Comment", "ünïcode kept")
    info.add_itxt("Title", "γράμματα")
    source = tmp_path / "card.png"
    Image.fromarray(np.full((4, 5), 90, np.uint8)).save(source, pnginfo=info, dpi=(300, 300))
    loaded = read_image(source)
    assert loaded.metadata["dpi"] == (300.0, 300.0)  # Pillow reads 299.9994 from pHYs
    assert loaded.metadata["text"] == {"Description": "a test card", "Comment": "ünïcode kept",
                                       "Title": "γράμματα"}
    save_image(tmp_path / "out.png", loaded.pixels, format="png", metadata=loaded.metadata)
    with Image.open(tmp_path / "out.png") as back:
        assert back.text == loaded.metadata["text"]
        assert round(back.info["dpi"][0]) == 300
        np.testing.assert_array_equal(np.asarray(back), 90)
    save_image(tmp_path / "out.tiff", loaded.pixels, format="tiff", metadata=loaded.metadata)
    with Image.open(tmp_path / "out.tiff") as back:
        assert back.info["dpi"] == (300, 300)
    with tifffile.TiffFile(tmp_path / "out.tiff") as back:
        tags = back.pages[0].tags
        assert tags[270].value == "a test card\nComment: ünïcode kept"
        assert tags[269].value == "γράμματα"


def test_jpeg_keeps_full_chroma_at_high_quality_and_notes_16_bit(tmp_path):
    from PIL import JpegImagePlugin

    from convcli.imageio import encode_jpeg

    line = np.zeros((16, 16, 3), np.uint8)
    line[:, 7] = (255, 0, 0)  # a thin red line
    for quality, sampling in ((90, 0), (95, 0), (75, 2)):
        with Image.open(io.BytesIO(encode_jpeg(line, quality=quality))) as back:
            assert JpegImagePlugin.get_sampling(back) == sampling
            if sampling == 0:
                assert np.asarray(back)[8, 7, 0] > 200 and np.asarray(back)[8, 7, 1] < 60
    notes: list[str] = []
    data = encode_jpeg((line.astype(np.uint16) * 257), notes=notes)
    assert len(notes) == 1 and "8 bits" in notes[0]
    with Image.open(io.BytesIO(data)) as back:
        assert back.mode == "RGB"
    with pytest.raises(OptionError, match="quality"):
        encode_jpeg(line, quality=0)


def test_webp_lossless_keeps_colour_under_transparent_pixels():
    from convcli.imageio import encode_webp

    rgba = np.zeros((6, 7, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 1] = np.arange(7) * 30
    rgba[:, 4:, 3] = 255  # the left columns are fully transparent, their colour hidden
    with Image.open(io.BytesIO(encode_webp(rgba, lossless=True))) as back:
        np.testing.assert_array_equal(np.asarray(back), rgba)
    gray = np.arange(42, dtype=np.uint8).reshape(6, 7) * 6
    with Image.open(io.BytesIO(encode_webp(gray, lossless=True))) as back:
        np.testing.assert_array_equal(np.asarray(back.convert("L")), gray)
    animated = encode_webp([gray, 255 - gray], lossless=True, duration=50)
    with Image.open(io.BytesIO(animated)) as back:
        assert back.n_frames == 2
        back.seek(1)
        np.testing.assert_array_equal(np.asarray(back.convert("L")), 255 - gray)


# ---------------------------------------------------------------------------
# frames


def _gif_with_partial_frames(path) -> list[np.ndarray]:
    """Three frames, each a small change on the last: Pillow stores frames 1 and 2 as the
    changed rectangles only. Returns the full frames a viewer shows."""
    palette = [0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (252 * 3)
    canvas = np.zeros((6, 8), np.uint8)
    full = [canvas.copy()]
    canvas[1:3, 2:5] = 1
    full.append(canvas.copy())
    canvas[4:6, 6:8] = 2
    canvas[1, 2] = 3
    full.append(canvas.copy())
    images = []
    for frame in full:
        image = Image.fromarray(frame, "P")
        image.putpalette(palette)
        images.append(image)
    images[0].save(path, save_all=True, append_images=images[1:], duration=80, disposal=1)
    colours = np.asarray(palette, np.uint8).reshape(-1, 3)
    return [colours[frame] for frame in full]


def test_gif_frames_are_composited_as_a_viewer_shows_them(tmp_path):
    from convcli.imageio import read_frames, read_image

    path = tmp_path / "anim.gif"
    expected = _gif_with_partial_frames(path)
    with Image.open(path) as gif:
        gif.seek(2)
        assert gif.tile[0].extents != (0, 0, 8, 6)  # really a partial rectangle
    frames = read_frames(path)
    assert [f.frame for f in frames] == [0, 1, 2] and all(f.n_frames == 3 for f in frames)
    for frame, want in zip(frames, expected):
        assert frame.channel_names == ("R", "G", "B")
        np.testing.assert_array_equal(frame.pixels, want)
    only = read_frames(path, "1-2")
    assert [f.frame for f in only] == [1, 2]
    np.testing.assert_array_equal(only[1].pixels, expected[2])
    assert read_image(path).n_frames == 3


def test_multipage_tiff_pages_and_frame_errors(tmp_path):
    import tifffile

    from convcli.imageio import parse_frames, read_frames

    pages = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5) * 1000
    path = tmp_path / "stack.tiff"
    with tifffile.TiffWriter(path) as writer:
        for page in pages:
            writer.write(page, photometric="minisblack")
    frames = read_frames(path)
    assert len(frames) == 3
    for index, frame in enumerate(frames):
        assert frame.bit_depth == 16
        np.testing.assert_array_equal(frame.pixels[..., 0], pages[index])
    np.testing.assert_array_equal(read_frames(path, 2)[0].pixels[..., 0], pages[2])
    assert parse_frames("all") == (0, None) and parse_frames(" 3 - 5 ") == (3, 5)
    with pytest.raises(OptionError, match=r"stack.tiff has 3 frames \(0-2\)"):
        read_frames(path, "2-3")
    for bad in ("", "-1", "a", "1-", "3-1", "1,2"):
        with pytest.raises(OptionError, match="--frames"):
            parse_frames(bad)
    single = tmp_path / "one.png"
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(single)
    (frame,) = read_frames(single)
    assert frame.frame is None and frame.n_frames == 1


def _cli(*args):
    from typer.testing import CliRunner

    from convcli.cli import app

    return CliRunner().invoke(app, ["apply", *map(str, args)])


def _read(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def _ok(result):
    assert result.exit_code == 0, (result.exit_code, result.output)
    return result


def test_cli_writes_jpeg_with_the_profile_kept(tmp_path):
    """`convcli apply photo.jpg -k gaussian:sigma=2 -o blurred.jpg` (was: unknown output suffix)."""
    path, _ = _photo_jpeg(tmp_path, orientation=6)
    target = tmp_path / "blurred.jpg"
    _ok(_cli(path, "-k", "gaussian:sigma=2", "-o", target))
    with Image.open(target) as back:
        assert back.format == "JPEG" and back.info["icc_profile"] == _icc()
        assert back.info["dpi"] == (300, 300) and back.getexif()[0x0112] == 1
        assert back.size == (12, 20)  # upright
    _ok(_cli(path, "-k", "identity", "-f", "webp", "--lossless", "-o", tmp_path))
    with Image.open(tmp_path / "photo.identity.webp") as back:
        assert back.format == "WEBP" and back.info["icc_profile"] == _icc()
    _ok(_cli(path, "-k", "identity", "--strip", "-o", tmp_path / "bare.png"))
    with Image.open(tmp_path / "bare.png") as back:
        assert "icc_profile" not in back.info and "dpi" not in back.info
    _ok(_cli(path, "-k", "identity", "-o", tmp_path / "kept.tiff"))
    with Image.open(tmp_path / "kept.tiff") as back:
        assert back.info["icc_profile"] == _icc() and back.info["dpi"] == (300, 300)


def test_cli_defaults_reflect_keep_and_the_new_auto(tmp_path):
    flat = tmp_path / "flat.png"
    Image.fromarray(np.full((16, 20, 3), 200, np.uint8)).save(flat)
    _ok(_cli(flat, "-k", "gaussian:sigma=2", "-o", tmp_path / "blur.png"))
    np.testing.assert_array_equal(_read(tmp_path / "blur.png"), 200)
    _ok(_cli(flat, "-k", "emboss", "-o", tmp_path / "emboss.png"))
    np.testing.assert_array_equal(_read(tmp_path / "emboss.png"), 128)
    pair = tmp_path / "pair.png"
    Image.fromarray(ONE_BY_TWO).save(pair)
    _ok(_cli(pair, "-k", "0.5,0.5", "-p", "valid", "-o", tmp_path / "pair-keep.png"))
    np.testing.assert_array_equal(_read(tmp_path / "pair-keep.png"), [[[255, 255, 255, 128]]])
    _ok(_cli(pair, "-k", "0.5,0.5", "-p", "valid", "--alpha", "filter", "-o", tmp_path / "pair-ch.png"))
    np.testing.assert_array_equal(_read(tmp_path / "pair-ch.png"), [[[255, 128, 128, 128]]])
    _ok(_cli(pair, "-k", "0.5,0.5", "-p", "valid", "--alpha", "drop", "--background", "white",
             "-o", tmp_path / "pair-drop.png"))
    np.testing.assert_array_equal(_read(tmp_path / "pair-drop.png"), [[[255, 255, 255]]])
    two = tmp_path / "two.npy"
    np.save(two, np.array([[200.0, 0.0]], np.float32))
    _ok(_cli(two, "-k", "-1,1", "-p", "valid", "--bias", "128", "-f", "png", "-o", tmp_path / "bias.png"))
    assert _read(tmp_path / "bias.png").ravel().tolist() == [0]
    ramp = tmp_path / "ramp.tiff"
    import tifffile

    tifffile.imwrite(ramp, np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5))
    _ok(_cli(ramp, "-k", "identity", "-o", tmp_path / "ramp.png"))
    np.testing.assert_array_equal(_read(tmp_path / "ramp.png"),
                                  np.rint(np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5) * 255))
    record = json.loads(_ok(_cli(flat, "-k", "box", "--json", "-o", tmp_path / "j.png")).stdout)
    assert record["results"][0]["geometry"]["border"] == "reflect"
    refused = _cli(flat, "-k", "box", "--transpose", "--border", "reflect", "-o", tmp_path / "t.png")
    assert refused.exit_code == 1 and "does not apply" in refused.output
    _ok(_cli(flat, "-k", "box", "--transpose", "-s", "2", "-o", tmp_path / "t.png"))


def test_cli_filters_every_frame(tmp_path):
    path = tmp_path / "anim.gif"
    expected = _gif_with_partial_frames(path)
    _ok(_cli(path, "-k", "identity", "-o", tmp_path))
    for index, want in enumerate(expected):
        np.testing.assert_array_equal(_read(tmp_path / f"anim.f{index}.identity.png"), want)
    _ok(_cli(path, "-k", "identity", "--frames", "1-2", "-o", tmp_path / "one.png"))
    assert sorted(p.name for p in tmp_path.glob("one.*")) == ["one.f1.identity.png", "one.f2.identity.png"]
    _ok(_cli(path, "-k", "identity", "-o", tmp_path / "all.tiff"))
    import tifffile

    with tifffile.TiffFile(tmp_path / "all.tiff") as tif:
        assert len(tif.pages) == 3
        for page, want in zip(tif.pages, expected):
            np.testing.assert_array_equal(page.asarray(), want)
    _ok(_cli(path, "-k", "identity", "--frames", "1-2", "-o", tmp_path / "two.webp", "--lossless"))
    with Image.open(tmp_path / "two.webp") as webp:
        assert webp.n_frames == 2
        webp.seek(1)
        np.testing.assert_array_equal(np.asarray(webp.convert("RGB")), expected[2])
    stacked = _ok(_cli(path, "-k", "identity", "-f", "npy", "-o", "-"))
    maps = np.load(io.BytesIO(stacked.stdout_bytes))
    np.testing.assert_array_equal(maps, np.stack(expected).astype(np.float32))
    refused = _cli(path, "-k", "identity", "-o", "-")
    assert refused.exit_code == 1 and "-f npy" in refused.output
    bad = _cli(path, "-k", "identity", "--frames", "5", "-o", tmp_path)
    assert bad.exit_code == 1 and "has 3 frames" in bad.output
    bad = _cli(path, "-k", "identity", "--frames", "x", "-o", tmp_path)
    assert bad.exit_code == 1 and "--frames" in bad.output


def test_animated_webp_frames_and_frame_stems(tmp_path):
    from convcli.imageio import encode_webp, frame_stem, read_frames

    rgba = np.zeros((5, 6, 4), np.uint8)
    rgba[..., 1] = 200
    second = rgba.copy()
    second[1:3, 2:4] = (255, 0, 0, 255)  # a small opaque square over a transparent frame
    path = tmp_path / "anim.webp"
    path.write_bytes(encode_webp([rgba, second], lossless=True))
    frames = read_frames(path)
    assert [f.frame for f in frames] == [0, 1] and frames[0].channel_names == ("R", "G", "B", "A")
    np.testing.assert_array_equal(frames[1].pixels[..., 3], second[..., 3])
    np.testing.assert_array_equal(frames[1].pixels[1:3, 2:4], second[1:3, 2:4])
    assert frame_stem("photo", None, 0) == "photo"
    assert [frame_stem("photo", i, 12) for i in (0, 3, 12)] == ["photo.f00", "photo.f03", "photo.f12"]
    assert frame_stem("clip", 7, 9) == "clip.f7"


@pytest.mark.parametrize("border", ["reflect", "zero", "wrap"])
def test_keep_band_by_band_equals_the_whole_image(border):
    """--alpha keep through the streaming pieces (PreparedRows + plan_render/render_rows per band)
    gives the whole-image library result."""
    from convcli.pipeline.bands import Rows
    from convcli.pipeline.prepared import PreparedRows
    from convcli.pipeline.render import plan_render, render_rows
    from convcli.pipeline.sources import ArraySource

    image = _disc_on_hidden_red(size=23, radius=7)
    image[..., 3] = np.where(image[..., 3] > 0, 255, np.arange(23)[None, :] * 5)  # a ramp of alpha
    bank = np.stack([gaussian(sigma=1.0, size=5), np.pad(resolve_kernel("sobel-x").stack()[0], 1)])
    source = ArraySource(image, name="disc", mode="RGBA", bit_depth=8, channel_names=("R", "G", "B", "A"))
    prepared = PreparedRows(source, source.channel_names, "keep", max_value=255)
    assert prepared.channel_names == ("R", "G", "B") and prepared.alpha is not None
    geometry = {"padding": "same", "border": border, "stride": 2}
    colour_plan = plan_render(prepared.colour.shape, bank, **geometry)
    alpha_plan = plan_render(prepared.alpha.shape, alpha_weights(bank), **geometry)
    kinds = kernel_kinds(bank)
    bands = []
    for start in range(0, colour_plan.out_shape[0], 5):
        rows = Rows(start, min(start + 5, colour_plan.out_shape[0]))
        bands.append(keep_alpha(render_rows(colour_plan, prepared.colour, rows),
                                render_rows(alpha_plan, prepared.alpha, rows), kinds, 255))
    whole, _ = _keep(image, bank, **geometry)
    np.testing.assert_allclose(np.concatenate(bands), whole, rtol=1e-5, atol=1e-3)


def test_is_float_unit_of_sources():
    from convcli.pipeline.prepared import is_float_unit
    from convcli.pipeline.sources import ArraySource

    ramp = np.linspace(0, 1, 60, dtype=np.float32).reshape(10, 6, 1)
    assert is_float_unit(ArraySource.from_array(ramp), band_rows=3)
    assert not is_float_unit(ArraySource.from_array(ramp * 1.5), band_rows=3)
    assert not is_float_unit(ArraySource.from_array(np.full((4, 4), np.nan, np.float32)))
    assert not is_float_unit(ArraySource.from_array(np.ones((4, 4), np.uint8)))
