"""Coil sensitivity maps: simulated birdcage maps, ESPIRiT estimation, and SVD coil compression.

Birdcage maps and the reference ESPIRiT come from ``sigpy``; the fast ESPIRiT (``benchmark.physics.espirit``),
the normalisation and the SVD coil compression (which sigpy does not offer) are written here.
"""

from __future__ import annotations

import numpy as np
import sigpy.mri
import torch

from benchmark.errors import InputError
from benchmark.physics.espirit import fast_espirit_maps

_EPS = 1e-12
#: ESPIRiT's calibration kernel width (sigpy's default); the calibration region must be at least this wide.
ESPIRIT_KERNEL_WIDTH = 6


def normalize_maps(maps_CHW: torch.Tensor) -> torch.Tensor:
    """Scale maps pointwise so that ``sum_c |S_c|^2 = 1`` wherever any coil sees signal (0 elsewhere)."""
    energy_HW = maps_CHW.abs().pow(2).sum(dim=-3, keepdim=True)
    scale = torch.where(energy_HW > _EPS, energy_HW.clamp_min(_EPS).rsqrt(), torch.zeros_like(energy_HW))
    return maps_CHW * scale


def birdcage_maps(num_coils: int, shape: tuple[int, int], radius: float = 1.5) -> torch.Tensor:
    """Simulated birdcage-coil sensitivities ``(C, H, W)`` complex64, normalised to sum_c |S_c|^2 = 1.

    ``radius`` is sigpy's relative coil radius (1.5 puts the coils just outside the field of view).
    """
    maps = sigpy.mri.birdcage_maps((num_coils, *shape), r=radius, nzz=num_coils, dtype=np.complex64)
    return normalize_maps(torch.from_numpy(np.ascontiguousarray(maps)))


#: ``espirit_maps``' implementations: the fast one (``benchmark.physics.espirit``, the default) and sigpy's.
ESPIRIT_METHODS = ("fast", "reference")


def reference_espirit_runs_on_gpu() -> bool:
    """Whether sigpy, and so the reference ESPIRiT, can use a CUDA GPU here (it needs CuPy)."""
    return bool(sigpy.config.cupy_enabled)


def espirit_maps(
    kspace_CHW: torch.Tensor,
    calib_width: int = 24,
    threshold: float = 0.02,
    kernel_width: int = ESPIRIT_KERNEL_WIDTH,
    crop: float = 0.95,
    method: str = "fast",
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """ESPIRiT sensitivities ``(C, H, W)`` estimated from the central ``calib_width`` ACS block, on the CPU.

    ``method="reference"`` runs ``sigpy.mri.app.EspiritCalib``; ``"fast"`` solves the same eigenproblem with
    far fewer transforms on a coarser grid (``benchmark.physics.espirit``). Maps are zero outside the eigenvalue
    ``crop`` support, as ESPIRiT defines them. ``device``: where they are computed (a CUDA device: through
    torch for ``"fast"``, through sigpy's device, which needs CuPy, for ``"reference"``).
    """
    ksp = kspace_CHW.detach().cpu().numpy().astype(np.complex64)
    device = torch.device(device)
    if method == "fast":
        return fast_espirit_maps(ksp, calib_width, threshold, kernel_width, crop, device=device)
    if method != "reference":
        raise ValueError(f"ESPIRiT method must be one of {', '.join(ESPIRIT_METHODS)}, got {method!r}")
    if device.type == "cuda" and not reference_espirit_runs_on_gpu():
        raise InputError("reference ESPIRiT on a GPU runs through sigpy, which needs CuPy (not installed); "
                         "the fast ESPIRiT runs on the GPU through torch")  # fmt: skip
    sigpy_device = sigpy.Device(device.index or 0) if device.type == "cuda" else sigpy.cpu_device
    settings = {"calib_width": calib_width, "thresh": threshold, "kernel_width": kernel_width, "crop": crop}
    app = sigpy.mri.app.EspiritCalib(
        sigpy.to_device(ksp, sigpy_device), device=sigpy_device, show_pbar=False, **settings
    )
    return torch.from_numpy(np.ascontiguousarray(sigpy.to_device(app.run()))).to(torch.complex64)


def coil_compress(kspace_CHW: torch.Tensor, num_virtual_coils: int) -> torch.Tensor:
    """Compress coils ``(..., C, H, W)`` to ``num_virtual_coils`` virtual coils by SVD (PCA over coils).

    One compression matrix is computed from all the data given (pass a whole volume to compress its
    slices consistently); the virtual coils are the leading left singular vectors of the C x N data
    matrix, so they keep the most signal energy.
    """
    num_coils = kspace_CHW.shape[-3]
    if not 1 <= num_virtual_coils <= num_coils:
        raise ValueError(f"num_virtual_coils must be in [1, {num_coils}], got {num_virtual_coils}")
    data_CN = kspace_CHW.movedim(-3, 0).reshape(num_coils, -1).to(torch.complex128)
    left_CC, _, _ = torch.linalg.svd(data_CN @ data_CN.conj().T)
    compress_VC = left_CC[:, :num_virtual_coils].conj().T.to(kspace_CHW.dtype)
    return torch.einsum("vc,...chw->...vhw", compress_VC, kspace_CHW)
