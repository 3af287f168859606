"""The multi-coil forward model A = M F S and its adjoint, plus coil combination.

``S`` multiplies the image by each coil's sensitivity, ``F`` is the centred orthonormal FFT and ``M``
keeps the sampled k-space locations (zeros elsewhere). With maps normalised so that sum_c |S_c|^2 = 1,
``adjoint(forward(x)) == x`` for a full mask: the adjoint of fully sampled data is the SENSE
(coil-combined) image.
"""

from __future__ import annotations

import torch

from benchmark.physics.fft import fft2c, ifft2c


class MultiCoilOperator:
    """Linear operator ``A = M F S`` for images ``(..., H, W)`` and k-space ``(..., C, H, W)``.

    ``maps_CHW`` are sensitivity maps ``(..., C, H, W)``; ``mask_HW`` is a boolean (or 0/1) sampling mask
    broadcastable to ``(..., H, W)``; ``None`` means fully sampled.
    """

    def __init__(self, maps_CHW: torch.Tensor, mask_HW: torch.Tensor | None = None) -> None:
        if not torch.is_complex(maps_CHW):
            raise TypeError(f"sensitivity maps must be complex, got {maps_CHW.dtype}")
        self.maps_CHW = maps_CHW
        self.mask_HW = None if mask_HW is None else mask_HW.to(maps_CHW.real.dtype)

    def _apply_mask(self, kspace_CHW: torch.Tensor) -> torch.Tensor:
        if self.mask_HW is None:
            return kspace_CHW
        # The mask is shared by all coils: insert the coil axis.
        return kspace_CHW * self.mask_HW.unsqueeze(-3)

    def forward(self, image_HW: torch.Tensor) -> torch.Tensor:
        """``y = M F (S x)``: one image ``(..., H, W)`` -> masked multi-coil k-space ``(..., C, H, W)``."""
        return self._apply_mask(fft2c(self.maps_CHW * image_HW.unsqueeze(-3)))

    def adjoint(self, kspace_CHW: torch.Tensor) -> torch.Tensor:
        """``x = S^H F^H M y``: multi-coil k-space -> coil-combined image ``(..., H, W)``."""
        return sense_combine(ifft2c(self._apply_mask(kspace_CHW)), self.maps_CHW)

    def data_consistent(self, image_HW: torch.Tensor, kspace_CHW: torch.Tensor) -> torch.Tensor:
        """Hard data consistency ``x + A^H (y - A x)``: each coil's k-space of ``x`` with the sampled locations
        replaced by the measurement, coil-combined (``S^H F^H (M y + (1 - M) F S x)`` when sum_c |S_c|^2 = 1).

        With one coil this is the projection onto ``{x : A x = y}``; with several it is not (the replaced coil
        images leave the range of ``S``), but it leaves an image already consistent with ``y`` unchanged.
        """
        return image_HW + self.adjoint(kspace_CHW - self.forward(image_HW))

    def low_resolution_image(self, kspace_CHW: torch.Tensor, width: float = 0.05) -> torch.Tensor:
        """The coil-combined image of the measured k-space under a centred Gaussian window whose standard
        deviation is ``width`` x the matrix on each axis: a smooth estimate (e.g. of the phase) from the
        measurements alone, as homodyne and partial-Fourier reconstructions take it (Noll et al. 1991)."""
        return self.adjoint(kspace_CHW * low_frequency_window(kspace_CHW, width))

    def windowed_gain(self, image_HW: torch.Tensor, kspace_CHW: torch.Tensor, width: float = 0.05) -> torch.Tensor:
        """The real gain ``g`` per image minimising ``||W (g A x - y)||^2`` over the measured samples, ``W`` the
        centred Gaussian window of ``low_resolution_image``: the intensity scale at which an image's
        low-frequency content matches the measurements (shape: the batch axes of ``image``)."""
        window = low_frequency_window(kspace_CHW, width)
        predicted, measured = self.forward(image_HW) * window, self._apply_mask(kspace_CHW) * window
        dims = (-3, -2, -1)
        return (predicted.conj() * measured).real.sum(dims) / (predicted.abs() ** 2).sum(dims).clamp_min(1e-30)

    __call__ = forward


def sense_combine(coil_images_CHW: torch.Tensor, maps_CHW: torch.Tensor) -> torch.Tensor:
    """Coil-combined complex image ``sum_c conj(S_c) x_c`` (coil axis -3)."""
    return (maps_CHW.conj() * coil_images_CHW).sum(dim=-3)


def rss(coil_images_CHW: torch.Tensor, dim: int = -3) -> torch.Tensor:
    """Root-sum-of-squares magnitude over the coil axis."""
    return coil_images_CHW.abs().pow(2).sum(dim=dim).sqrt()


def low_frequency_window(kspace_CHW: torch.Tensor, width: float) -> torch.Tensor:
    """A centred Gaussian over k-space ``(H, W)`` with standard deviation ``width`` x the matrix on each axis."""
    real = kspace_CHW.real.dtype
    rows, cols = (
        (torch.arange(n, dtype=real, device=kspace_CHW.device) - n // 2) / n for n in kspace_CHW.shape[-2:]
    )  # k-space centre at index n // 2, as fft2c puts it
    return torch.exp(-(rows[:, None] ** 2 + cols[None, :] ** 2) / (2 * width**2))
