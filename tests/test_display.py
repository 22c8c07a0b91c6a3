"""Float maps → pixels: each scale against its formula, the ``auto`` rule on real filters."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from convcli.display import parse_scale, to_pixels
from convcli.errors import OptionError

RNG = np.random.default_rng(7)
PHOTO = RNG.integers(0, 256, (24, 30, 3)).astype(np.float32)
SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)


def _per_channel(image, weights):
    return np.stack([ndimage.correlate(image[:, :, c], weights, mode="constant")
                     for c in range(image.shape[2])], axis=2)


def test_auto_keeps_a_blur_unchanged():
    blurred = ndimage.gaussian_filter(PHOTO, sigma=(1.5, 1.5, 0))
    assert blurred.min() >= 0 and blurred.max() <= 255
    pixels = to_pixels(blurred)
    assert pixels.dtype == np.uint8 and pixels.shape == PHOTO.shape
    np.testing.assert_array_equal(pixels, np.rint(blurred))


def test_auto_keeps_a_sixteen_bit_blur_unchanged():
    image = PHOTO * 257
    blurred = ndimage.uniform_filter(image, size=(3, 3, 1))
    pixels = to_pixels(blurred, bit_depth=16)
    assert pixels.dtype == np.uint16
    np.testing.assert_array_equal(pixels, np.rint(blurred))


def test_auto_makes_negative_edges_visible():
    step = np.zeros((10, 12, 1), np.float32)
    step[:, 6:] = 200  # a rising edge at column 6 and, at the zero border, a falling one at 11
    edges = _per_channel(step, SOBEL_X)
    assert edges.min() < 0 < edges.max()
    pixels = to_pixels(edges)
    largest = np.abs(edges).max()  # 800 > 255: scaled so that it maps to 255
    np.testing.assert_array_equal(pixels, np.rint(np.abs(edges) * (255 / largest)))
    falling = edges < 0
    assert (pixels[falling] > 0).all()  # negative responses are not clipped to black
    assert pixels[falling].max() == 255


def test_auto_abs_without_scaling_when_small():
    maps = np.array([[-10.4, 0.0], [20.0, 100.6]])
    np.testing.assert_array_equal(to_pixels(maps), [[10, 0], [20, 101]])


def test_auto_clips_overshoot_only():
    sharpened = np.array([[0.0, 128.0], [300.0, 255.4]])
    np.testing.assert_array_equal(to_pixels(sharpened), [[0, 128], [255, 255]])


def test_explicit_scales():
    maps = np.array([[-100.0, -0.6], [50.2, 400.0]])
    np.testing.assert_array_equal(to_pixels(maps, scale="clip"), [[0, 0], [50, 255]])
    np.testing.assert_array_equal(to_pixels(maps, scale="abs"), [[100, 1], [50, 255]])
    stretched = (maps + 100) / 500 * 255
    np.testing.assert_array_equal(to_pixels(maps, scale="minmax"), np.rint(stretched))
    np.testing.assert_array_equal(to_pixels(maps, scale="offset:128"), [[28, 127], [178, 255]])
    np.testing.assert_array_equal(to_pixels(maps, scale="offset:-0.5"), [[0, 0], [50, 255]])


def test_minmax_of_a_constant_map_is_zero():
    np.testing.assert_array_equal(to_pixels(np.full((3, 3), 42.0), scale="minmax"), 0)


def test_minmax_sixteen_bit():
    maps = np.linspace(-1, 1, 5)
    np.testing.assert_array_equal(to_pixels(maps, scale="minmax", bit_depth=16),
                                  np.rint(np.linspace(0, 65535, 5)))


def test_emboss_hint_offset():
    emboss = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], np.float32)
    response = _per_channel(PHOTO, emboss)
    pixels = to_pixels(response, hint="offset:128")
    np.testing.assert_array_equal(pixels, np.clip(np.rint(response + 128), 0, 255))
    pixels16 = to_pixels(response * 257, bit_depth=16, hint="offset:128")
    np.testing.assert_array_equal(pixels16, np.clip(np.rint(response * 257 + 128 * 257), 0, 65535))


def test_hint_only_used_by_auto_and_explicit_offset_not_rescaled():
    maps = np.array([[-10.0, 10.0]])
    np.testing.assert_array_equal(to_pixels(maps, scale="clip", hint="offset:128"), [[0, 10]])
    np.testing.assert_array_equal(to_pixels(maps, scale="offset:128", bit_depth=16), [[118, 138]])
    np.testing.assert_array_equal(to_pixels(maps, hint="abs"), [[10, 10]])


def test_nan_and_inf():
    maps = np.array([[np.nan, np.inf], [-np.inf, 12.0]])
    np.testing.assert_array_equal(to_pixels(maps, scale="clip"), [[0, 255], [0, 12]])
    np.testing.assert_array_equal(to_pixels(maps, scale="minmax"), [[0, 255], [0, 255]])
    assert to_pixels(np.full((2, 2), np.nan)).max() == 0


def test_input_is_not_modified():
    maps = np.array([[-3.0, 4.0]], np.float32)
    to_pixels(maps, scale="abs")
    np.testing.assert_array_equal(maps, [[-3.0, 4.0]])


@pytest.mark.parametrize("text", ["auto", "CLIP", " abs ", "minmax", "offset:128", "offset:-3.5"])
def test_parse_scale_accepts(text):
    assert parse_scale(text) == text.strip().lower()


@pytest.mark.parametrize("text", ["", "bright", "offset", "offset:", "offset:abc", "offset:nan",
                                  "offset:inf", "clip:3"])
def test_parse_scale_rejects(text):
    with pytest.raises(OptionError, match="scale"):
        parse_scale(text)


def test_bad_bit_depth():
    with pytest.raises(OptionError, match="bit_depth"):
        to_pixels(np.zeros((2, 2)), bit_depth=12)


@given(arrays(np.float32, st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 3)),
              elements=st.floats(-1e6, 1e6, width=32)),
       st.sampled_from([8, 16]))
def test_auto_property(maps, bit_depth):
    top = 255 if bit_depth == 8 else 65535
    pixels = to_pixels(maps, bit_depth=bit_depth)
    assert pixels.shape == maps.shape
    assert pixels.dtype == (np.uint8 if bit_depth == 8 else np.uint16)
    if maps.min() >= 0:
        expected = np.clip(np.rint(maps), 0, top)
    else:
        strong = float(np.percentile(np.abs(maps.astype(np.float64)), 99))
        factor = top / strong if strong > top else 1.0
        expected = np.clip(np.rint(np.abs(maps) * np.float32(factor)), 0, top)
    np.testing.assert_allclose(pixels, expected, atol=1)  # float32 rounding at .5 only


def test_auto_edges_are_not_dimmed_by_a_few_outliers():
    """Rule 3 scales by the 99th percentile of |x|: one strong pixel saturates, the rest stay bright."""
    edges = np.full((20, 20), -300.0)
    edges[::2] = 300.0
    edges[0, 0] = 5000.0  # 1 pixel of 400: above the 99th percentile
    pixels = to_pixels(edges)
    assert pixels[0, 0] == 255
    np.testing.assert_array_equal(pixels.ravel()[1:], 255)  # 300 → 255 (q = 300), not 300·255/5000 = 15
    ramp = np.linspace(-1000, 1000, 201)  # |x| sorted: 0, 10, 10, 20, 20, …; index 198 → q = 990
    np.testing.assert_array_equal(to_pixels(ramp), np.clip(np.rint(np.abs(ramp) * 255 / 990), 0, 255))
