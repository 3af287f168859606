"""Centred, orthonormal 2-D Fourier transforms over the last two axes of complex tensors.

Convention (fastMRI's): k-space centre (DC) sits at index ``N // 2``; ``norm="ortho"`` makes the
transform unitary, so noise variance and inner products are preserved. Written here rather than taken
from ``fastmri.fftc`` because fastMRI's versions expect real ``(..., 2)`` views, while the whole suite
keeps complex dtype tensors. The numpy versions (same convention) serve the dataset builder, whose bytes
must not depend on the torch build's FFT library or thread count.
"""

from __future__ import annotations

import numpy as np
import torch

_DIMS = (-2, -1)


def fft2c(image: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal 2-D FFT: image space -> k-space over the last two axes."""
    _require_complex(image)
    shifted = torch.fft.ifftshift(image, dim=_DIMS)
    return torch.fft.fftshift(torch.fft.fft2(shifted, dim=_DIMS, norm="ortho"), dim=_DIMS)


def ifft2c(kspace: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal 2-D inverse FFT: k-space -> image space over the last two axes."""
    _require_complex(kspace)
    shifted = torch.fft.ifftshift(kspace, dim=_DIMS)
    return torch.fft.fftshift(torch.fft.ifft2(shifted, dim=_DIMS, norm="ortho"), dim=_DIMS)


def _require_complex(tensor: torch.Tensor) -> None:
    # A real tensor would be silently promoted; a (..., 2) real view would be transformed over the
    # wrong axes. Both are bugs at the call site, so refuse them.
    if not torch.is_complex(tensor):
        raise TypeError(f"expected a complex tensor, got {tensor.dtype} with shape {tuple(tensor.shape)}")


def numpy_fft2c(image: np.ndarray) -> np.ndarray:
    """``fft2c`` on a numpy array (numpy's pocketfft, single-threaded, deterministic)."""
    shifted = np.fft.ifftshift(image, axes=_DIMS)
    return np.fft.fftshift(np.fft.fft2(shifted, axes=_DIMS, norm="ortho"), axes=_DIMS)


def numpy_ifft2c(kspace: np.ndarray) -> np.ndarray:
    """``ifft2c`` on a numpy array."""
    shifted = np.fft.ifftshift(kspace, axes=_DIMS)
    return np.fft.fftshift(np.fft.ifft2(shifted, axes=_DIMS, norm="ortho"), axes=_DIMS)
