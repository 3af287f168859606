"""MRI physics shared by every method: centred orthonormal FFT, coil sensitivities, the operator A = M F S."""

from benchmark.physics.coils import (
    birdcage_maps,
    coil_compress,
    espirit_maps,
    normalize_maps,
)
from benchmark.physics.fft import fft2c, ifft2c
from benchmark.physics.operators import MultiCoilOperator, rss, sense_combine

__all__ = [
    "MultiCoilOperator",
    "birdcage_maps",
    "coil_compress",
    "espirit_maps",
    "fft2c",
    "ifft2c",
    "normalize_maps",
    "rss",
    "sense_combine",
]
