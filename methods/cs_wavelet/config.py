"""Compressed-sensing settings per profile."""

from dataclasses import dataclass


@dataclass(frozen=True)
class CSWaveletConfig:
    """``lamda`` weights the L1 norm of Daubechies-4 wavelet coefficients (data scaled to slice max 1)."""

    lamda: float = 1e-3
    max_iter: int = 30
    wavelet: str = "db4"


CONFIGS = {"tiny": CSWaveletConfig(max_iter=30), "paper": CSWaveletConfig(max_iter=100)}
