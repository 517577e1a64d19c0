"""The 8x8 digit images the model learns from, and the checks an image passes before the
model reads it."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn.datasets import load_digits

SIDE = 8
PIXELS = SIDE * SIDE
# Each pixel of load_digits counts the ink in a 4x4 block of a 32x32 bitmap: 0 to 16.
MAX_INTENSITY = 16


def load() -> tuple[np.ndarray, np.ndarray]:
    """The handwritten digits bundled with scikit-learn: 1,797 images, each flattened to 64
    pixels, and the digit each one shows."""
    digits = load_digits()
    return digits.data, digits.target


def flatten(images: ArrayLike) -> np.ndarray:
    """``images`` as rows of 64 pixels, as the model reads them.

    Takes a batch of 8x8 images, shaped ``(n, 8, 8)``, or of flattened ones, ``(n, 64)``,
    or a single image, ``(8, 8)`` or ``(64,)``. Refuses any other shape, and pixels outside
    0-16: an image on a 0-255 scale would still get a digit, a wrong one.
    """
    try:
        array = np.asarray(images, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"expected images as an array of numbers: {error}") from None
    if array.shape in {(SIDE, SIDE), (PIXELS,)}:
        array = array.reshape(1, PIXELS)
    elif array.ndim == 3 and array.shape[1:] == (SIDE, SIDE):
        array = array.reshape(len(array), PIXELS)
    elif array.ndim != 2 or array.shape[1] != PIXELS:
        raise ValueError(
            f"expected {SIDE}x{SIDE} images, shaped (n, {SIDE}, {SIDE}) or flattened to "
            f"(n, {PIXELS}); got shape {array.shape}"
        )
    if len(array) == 0:
        raise ValueError("no images to classify")
    if not np.isfinite(array).all():
        raise ValueError("pixels must be numbers; got NaN or infinity")
    lowest, highest = array.min(), array.max()
    if lowest < 0 or highest > MAX_INTENSITY:
        raise ValueError(
            f"pixels must be between 0 and {MAX_INTENSITY}, the scale of load_digits; "
            f"got {lowest:g} to {highest:g}"
        )
    return array
