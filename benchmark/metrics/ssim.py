"""Batched SSIM in torch that reproduces ``skimage.metrics.structural_similarity`` (to ~1e-6).

Written here because skimage runs one image at a time on the CPU; this runs a whole batch on any
device. Both windows skimage offers are supported: ``uniform`` (7 x 7 box, sample covariance, the
fastMRI protocol) and ``gaussian`` (sigma 1.5 truncated at 3.5 sigma, population covariance, the paper
authors' protocol). As in skimage, the SSIM map is averaged over the region the window fits inside
without padding, so no padding mode is involved.

SSIM(x, y) = ((2 mu_x mu_y + C1)(2 s_xy + C2)) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2)),
C1 = (K1 L)^2, C2 = (K2 L)^2, L the data range (Wang et al., IEEE TIP 2004).
"""

from __future__ import annotations

from typing import Literal

import torch

K1, K2 = 0.01, 0.03
GAUSSIAN_SIGMA, GAUSSIAN_TRUNCATE = 1.5, 3.5
UNIFORM_SIZE = 7


def _window(kind: str, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, bool]:
    """Separable 1-D window and whether covariances use the unbiased (N - 1) normalisation."""
    if kind == "uniform":
        return torch.full((UNIFORM_SIZE,), 1.0 / UNIFORM_SIZE, dtype=dtype, device=device), True
    if kind == "gaussian":
        radius = int(GAUSSIAN_TRUNCATE * GAUSSIAN_SIGMA + 0.5)  # scipy.ndimage.gaussian_filter's radius
        offsets = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
        weights = torch.exp(-0.5 * (offsets / GAUSSIAN_SIGMA) ** 2)
        return weights / weights.sum(), False
    raise ValueError(f"unknown SSIM window {kind!r}")


def ssim(
    x_BHW: torch.Tensor,
    y_BHW: torch.Tensor,
    data_range_B: torch.Tensor | float,
    window: Literal["uniform", "gaussian"] = "uniform",
    dtype: torch.dtype = torch.float32,
    chunk: int | None = None,
    region_BHW: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean SSIM per image, shape ``(B,)`` (float64).

    Computed in ``dtype`` (float32 agrees with skimage's float64 to ~1e-7) over chunks of ``chunk``
    images. On a CPU two images at a time keep the filtering in cache (measured: 2-3x faster than
    skimage's per-slice loop on 48 slices of 256 x 256); on a GPU the whole batch is one chunk.
    ``region_BHW`` (boolean): average the SSIM map only over those pixels (of the region the window fits in).
    """
    if chunk is None:
        chunk = 2 if x_BHW.device.type == "cpu" else max(1, x_BHW.shape[0])
    kernel, sample_covariance = _window(window, dtype, x_BHW.device)
    data_range = torch.as_tensor(data_range_B, dtype=torch.float64, device=x_BHW.device).expand(x_BHW.shape[0])
    values = [
        _ssim_chunk(
            x_BHW[i : i + chunk].to(dtype),
            y_BHW[i : i + chunk].to(dtype),
            data_range[i : i + chunk].to(dtype),
            kernel,
            sample_covariance,
            None if region_BHW is None else region_BHW[i : i + chunk],
        )
        for i in range(0, x_BHW.shape[0], chunk)
    ]
    return torch.cat(values).to(torch.float64)


def _ssim_chunk(x, y, data_range, kernel, sample_covariance, region=None) -> torch.Tensor:
    # Local means of x, y, x^2, y^2, xy in one filtering pass over a (B, 5, H, W) stack.
    means = _separable_valid_filter(torch.stack([x, y, x * x, y * y, x * y], dim=1), kernel)
    mu_x, mu_y, mu_xx, mu_yy, mu_xy = means.unbind(dim=1)
    size = kernel.numel()
    correction = size * size / (size * size - 1) if sample_covariance else 1.0
    var_x = correction * (mu_xx - mu_x * mu_x)
    var_y = correction * (mu_yy - mu_y * mu_y)
    cov_xy = correction * (mu_xy - mu_x * mu_y)
    c1 = (K1 * data_range).reshape(-1, 1, 1) ** 2
    c2 = (K2 * data_range).reshape(-1, 1, 1) ** 2
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)
    denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    ssim_map = (numerator / denominator).to(torch.float64)
    if region is None:
        return ssim_map.mean(dim=(-2, -1))
    # The map covers the pixels the window fits around (skimage crops (size - 1) // 2 from every side).
    pad = (size - 1) // 2
    inside = region[..., pad : pad + ssim_map.shape[-2], pad : pad + ssim_map.shape[-1]].to(torch.float64)
    return (ssim_map * inside).sum(dim=(-2, -1)) / inside.sum(dim=(-2, -1))


def _separable_valid_filter(images: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Correlate the last two axes with ``kernel`` (separably), keeping only fully covered pixels.

    Shifted weighted sums rather than ``conv2d``: for single-channel images torch's CPU convolution is
    several times slower than this memory-bound loop over the window's taps.
    """
    size = kernel.numel()
    rows = images.shape[-2] - size + 1
    out = kernel[0] * images[..., 0:rows, :]
    for tap in range(1, size):
        out = out + kernel[tap] * images[..., tap : tap + rows, :]
    cols = images.shape[-1] - size + 1
    result = kernel[0] * out[..., 0:cols]
    for tap in range(1, size):
        result = result + kernel[tap] * out[..., tap : tap + cols]
    return result
