"""The digits are what the model expects, and images it cannot read are refused with what
is wrong."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ${{ values.package }}.images import MAX_INTENSITY, PIXELS, flatten, load


def test_the_digits_are_8x8_images_of_every_digit() -> None:
    x, y = load()
    assert x.shape == (len(y), PIXELS)
    assert set(y) == set(range(10))
    assert x.min() == 0
    assert x.max() == MAX_INTENSITY


@pytest.mark.parametrize("shape", [(8, 8), (64,), (5, 8, 8), (5, 64)])
def test_images_are_flattened_to_rows_of_64_pixels(shape: tuple[int, ...]) -> None:
    count = int(np.prod(shape)) // PIXELS
    assert flatten(np.zeros(shape)).shape == (count, PIXELS)


@pytest.mark.parametrize("shape", [(7, 7), (28, 28), (3, 8, 7), (3, 63), (2, 8, 8, 1)])
def test_images_of_the_wrong_shape_are_refused(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=re.escape("expected 8x8 images, shaped (n, 8, 8)")):
        flatten(np.zeros(shape))
    with pytest.raises(ValueError, match=re.escape(f"got shape {shape}")):
        flatten(np.zeros(shape))


def test_no_images_are_refused() -> None:
    with pytest.raises(ValueError, match="no images"):
        flatten(np.zeros((0, PIXELS)))


@pytest.mark.parametrize("pixel", [255.0, -1.0, np.nan])
def test_pixels_outside_0_to_16_are_refused(pixel: float) -> None:
    image = np.zeros(PIXELS)
    image[0] = pixel
    with pytest.raises(ValueError, match="pixels must be"):
        flatten(image)
