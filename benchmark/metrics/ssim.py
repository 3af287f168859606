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
import torch.nn.functional as F

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
) -> torch.Tensor:
    """Mean SSIM per image, shape ``(B,)``, computed in float64."""
    x = x_BHW.to(torch.float64).unsqueeze(1)
    y = y_BHW.to(torch.float64).unsqueeze(1)
    kernel, sample_covariance = _window(window, torch.float64, x.device)
    size = kernel.numel()

    def local_mean(image: torch.Tensor) -> torch.Tensor:
        rows = F.conv2d(image, kernel.view(1, 1, size, 1))
        return F.conv2d(rows, kernel.view(1, 1, 1, size))

    # One convolution pass for all five local statistics of every image in the batch.
    stacked = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    means = local_mean(stacked.flatten(0, 1).unsqueeze(1))
    mu_x, mu_y, mu_xx, mu_yy, mu_xy = means.view(x.shape[0], 5, *means.shape[-2:]).unbind(dim=1)
    correction = size * size / (size * size - 1) if sample_covariance else 1.0
    var_x = correction * (mu_xx - mu_x * mu_x)
    var_y = correction * (mu_yy - mu_y * mu_y)
    cov_xy = correction * (mu_xy - mu_x * mu_y)
    data_range = torch.as_tensor(data_range_B, dtype=torch.float64, device=x.device).reshape(-1, 1, 1)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)
    denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return (numerator / denominator).mean(dim=(-2, -1))
