"""Numba kernels for the network's side of ``models.predict``: the input tensor from the resized
pixels, and the uint8 mask from the network's output, each in one pass without the GIL.

The same float steps as rembg's numpy expressions, in the same order and precision (float64
for the input, float32 for the mask, no fused multiply-adds), so the results are equal bit for
bit. numpy gives up and takes back the GIL around each of its dozen whole-array steps;
where many images run in threads at once (a GPU's gathered batch), each take-back waits in line.
"""

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def normalise(pixels, by_max, mean, std, out):
    """``out[0, c] = (pixels[..., c] / divisor - mean[c]) / std[c]`` in float64, stored as float32;
    the divisor is the pixels' maximum (at least 1e-6) with ``by_max``, else 255."""
    height, width = pixels.shape[0], pixels.shape[1]
    divisor = 255.0
    if by_max:
        top = 0
        for y in range(height):
            for x in range(width):
                for c in range(3):
                    top = max(top, pixels[y, x, c])
        divisor = max(float(top), 1e-6)
    for c in range(3):
        for y in range(height):
            for x in range(width):
                out[0, c, y, x] = np.float32((pixels[y, x, c] / divisor - mean[c]) / std[c])


@nb.njit(cache=True, nogil=True)
def minmax_mask(pred, out):
    """``out = (clip((pred - min) / (max - min), 0, 1) * 255).astype(uint8)`` in float32; all zeros
    where the output is flat or holds a NaN (numpy's min and max are NaN then)."""
    low = high = pred[0, 0]
    flat = False
    for y in range(pred.shape[0]):
        for x in range(pred.shape[1]):
            value = pred[y, x]
            if np.isnan(value):
                flat = True
            low, high = min(low, value), max(high, value)
    if flat or not high > low:
        out[:] = 0
        return
    span, zero, one = high - low, np.float32(0), np.float32(1)
    for y in range(pred.shape[0]):
        for x in range(pred.shape[1]):
            out[y, x] = np.uint8(min(max((pred[y, x] - low) / span, zero), one) * np.float32(255))
