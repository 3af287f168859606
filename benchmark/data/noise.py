"""The k-space noise level of a real acquisition, from its readout oversampling (audit's ideal observer).

fastMRI's brain files oversample the readout 2x, so the coil images' rows outside the central recon rows lie
outside the prescribed field of view, in air: noise only. The inner half of each margin is used: the receiver's
anti-aliasing filter attenuates the outer edge of an oversampled field of view, which would bias σ low. The
orthonormal FFT gives an image pixel the variance of the k-space samples summed into it, so a pixel there has σ²
times the fraction of k-space that was measured (samples a scanner zero-filled carry no noise); that fraction is
divided out. Per coil the estimate is a median, robust to anatomy or ringing reaching the margin: |n|² of complex
Gaussian noise is exponential with mean σ_c², so its median is σ_c² ln 2; coils differ in noise level, so σ² is
the mean of the coils' σ_c² (a median pooled over coils would fall below it). σ follows the embedded files'
convention, E|n|² = σ² per complex sample, averaged over coils. Cropping the image to the benchmark size (unitary
on the kept pixels) leaves it unchanged in the measured band, and so does SVD coil compression (an orthonormal
coil basis) for white noise. Written by hand: no library we use estimates noise from a file's readout margins.
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
    if margin < 2:
        return None
    measured_fraction = float(np.any(kspace_CHW != 0, axis=0).mean())
    images = numpy_ifft2c(np.asarray(kspace_CHW, dtype=np.complex128))
    inner = margin // 2  # the half of each margin next to the recon rows
    top, bottom = images[:, margin - inner : margin], images[:, rows - margin : rows - margin + inner]
    power_C = np.abs(np.concatenate([top, bottom], axis=1)).reshape(len(images), -1) ** 2
    coil_variances = np.median(power_C, axis=1) / math.log(2)
    return math.sqrt(float(coil_variances.mean()) / measured_fraction)


def volume_noise_sigma(slice_sigmas: list[float | None]) -> float | None:
    """One σ per volume: the median of its slices' estimates (``None`` if no slice had a margin)."""
    known = [sigma for sigma in slice_sigmas if sigma is not None]
    return float(np.median(known)) if known else None
