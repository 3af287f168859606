"""The k-space noise level of a real acquisition, from its readout oversampling (audit's ideal observer).

fastMRI's brain files oversample the readout 2x, so the coil images' rows outside the central recon rows lie
outside the prescribed field of view, in air: noise only. The orthonormal FFT gives an image pixel the variance
of the k-space samples summed into it, so a pixel there has σ² times the fraction of phase-encode columns that
were measured (columns a scanner zero-filled carry no noise); that fraction is divided out. The estimate is a
median, robust to anatomy or ringing reaching the margin: |n|² of complex Gaussian noise is exponential with
mean σ², so its median is σ² ln 2. σ follows the embedded files' convention, E|n|² = σ² per complex sample.
Cropping the image to the benchmark size (unitary on the kept pixels) leaves σ unchanged in the measured band,
and so does SVD coil compression (an orthonormal coil basis) for white noise of one level in every coil, which
real coils only approximate. Written by hand: no library we use estimates noise from a file's readout margins.
"""

from __future__ import annotations

import math

import numpy as np

from benchmark.physics.fft import numpy_ifft2c


def margin_noise_sigma(kspace_CHW: np.ndarray, recon_rows: int) -> float | None:
    """σ of one slice's complex k-space noise, from its coil images' rows outside the central ``recon_rows``;
    ``None`` when the readout is not oversampled (no margin to measure in)."""
    rows = kspace_CHW.shape[-2]
    margin = (rows - recon_rows) // 2
    if margin < 1:
        return None
    measured_fraction = float(np.any(kspace_CHW != 0, axis=(0, 1)).mean())
    images = numpy_ifft2c(np.asarray(kspace_CHW, dtype=np.complex128))
    outside = np.concatenate([images[:, :margin], images[:, rows - margin :]], axis=1)
    median_power = float(np.median(np.abs(outside) ** 2))
    return math.sqrt(median_power / math.log(2) / measured_fraction)


def volume_noise_sigma(slice_sigmas: list[float | None]) -> float | None:
    """One σ per volume: the median of its slices' estimates (``None`` if no slice had a margin)."""
    known = [sigma for sigma in slice_sigmas if sigma is not None]
    return float(np.median(known)) if known else None
