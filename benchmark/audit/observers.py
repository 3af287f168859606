"""What a reconstruction did to the known lesions, and what it invented where there were none.

Per inserted lesion (``benchmark.audit.lesions``), on magnitudes in data units, with ``b`` its disc and
``Δ = c · μ_bg · b`` the true magnitude change it makes (exact: the lesion is carried on the truth's phase):

- **contrast recovery** ``CR = ⟨b, |x̂_L| - |x̂_0|⟩ / ⟨b, Δ⟩``: 1 faithful, 0 erased, above 1 exaggerated;
- **detectability**: a non-prewhitening matched filter, the template ``w = sign(c) (b - (Σb/Σa) a)`` (``a`` the
  annulus from ρ + 1.5 to 2ρ + 3.5 px, so a smooth background cancels), scores ``t = ⟨w, |x̂|⟩`` at the same
  sites with (``x̂_L``) and without (``x̂_0``) the lesion; AUC is the Mann-Whitney statistic of the present
  against the absent scores (``scipy.stats``; ties count one half), ``d' = √2 Φ⁻¹(AUC)``;
- **the data's ceiling**: the ideal observer on the measurements, for a known lesion in white complex Gaussian
  noise with ``E|n|² = σ²`` per sample (σ/√2 per real part, as the embedded data store it):
  ``d'_data = √2 ‖M F S ℓ‖ / σ``; efficiency ``(d'_recon / d'_data)²``;
- **false structures** (invented anatomy): the same zero-mean filter, of each lesion size and sign, slid over the
  lesion-free reconstruction ``|x̂_0|`` and over the truth ``|x_0|`` inside the head interior. The excess is the
  reconstruction's response minus the truth's largest within ``TRUTH_TOLERANCE_PX`` (real anatomy a pixel off
  is not invented), the truth's taken as 0 where negative (a dark spot erased is not a bright one invented). A
  false structure is a local maximum of the excess (over a window of ``SITE_SPACING`` radii) where both the
  excess and the reconstruction's own response exceed what the faintest inserted lesion of that size and sign
  (``|c| = 0.1``) gives on the local background; its *conspicuity* is the contrast of an inserted lesion with
  the same response (the smaller of the two, over ``μ_bg Σb²``), so a table can count false structures as
  conspicuous as each inserted contrast (0.1, 0.2, 0.4): an FROC-style rate per threshold. At R = 32 every
  method's artefacts reach 0.1 in most windows, which is why the stronger levels are shown beside it.

Written here: these are the audit's definitions (FROC-style counting after Bhadra et al. 2021's maps); the AUC
and Φ⁻¹ come from ``scipy.stats``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage, stats

from benchmark.audit.lesions import LESION_CONTRASTS, SITE_SPACING, Lesion, smooth_disc
from benchmark.physics.fft import numpy_fft2c

#: The inserted contrasts' magnitudes: false structures are counted at each as conspicuous as it; a false
#: structure must at least out-respond the faintest.
CONSPICUITY_LEVELS = tuple(sorted({abs(c) for c in LESION_CONTRASTS}))
FAINTEST_CONTRAST = CONSPICUITY_LEVELS[0]
#: Pixels the truth's own spots may lie off a reconstructed one and still account for it.
TRUTH_TOLERANCE_PX = 1


def true_change(shape: tuple[int, int], lesion: Lesion) -> np.ndarray:
    """``Δ = |x_L| - |x_0| = c · μ_bg · b``."""
    return lesion.contrast * lesion.background * smooth_disc(shape, lesion.row, lesion.col, lesion.radius)


def contrast_recovery(with_lesion: np.ndarray, without: np.ndarray, lesion: Lesion) -> float:
    """CR of one lesion from the two reconstructions' magnitudes ``(H, W)``."""
    disc = smooth_disc(with_lesion.shape, lesion.row, lesion.col, lesion.radius)
    change = np.abs(with_lesion) - np.abs(without)
    return float((disc * change).sum() / (disc * true_change(with_lesion.shape, lesion)).sum())


def observer_template(shape: tuple[int, int], lesion: Lesion) -> np.ndarray:
    """The NPW template: the disc minus an annulus of equal weight, signed so a present lesion raises ``t``."""
    return math.copysign(1.0, lesion.contrast) * _zero_mean_template(shape, lesion.row, lesion.col, lesion.radius)


def _zero_mean_template(shape: tuple[int, int], row: float, col: float, radius: float) -> np.ndarray:
    """The disc ``b`` minus the annulus from ρ + 1.5 to 2ρ + 3.5 px, weighted so the two cancel: disjoint from
    the disc, so a lesion ``c μ b`` responds with exactly ``c μ Σb²``."""
    disc = smooth_disc(shape, row, col, radius)
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    distance = np.hypot(rows - row, cols - col)
    annulus = ((distance >= radius + 1.5) & (distance <= 2 * radius + 3.5)).astype(np.float64)
    return disc - disc.sum() / annulus.sum() * annulus


def observer_score(image: np.ndarray, lesion: Lesion) -> float:
    """``t = ⟨w, |x̂|⟩`` at the lesion's site."""
    return float((observer_template(image.shape, lesion) * np.abs(image)).sum())


def detection_auc(present: np.ndarray, absent: np.ndarray) -> float:
    """AUC of scores with the lesion against scores without (Mann-Whitney U / (n₁ n₀), ties one half)."""
    return float(stats.mannwhitneyu(present, absent).statistic / (len(present) * len(absent)))


def dprime_from_auc(auc: float) -> float:
    """``√2 Φ⁻¹(AUC)`` (the equal-variance Gaussian observer's d'; infinite at AUC = 1)."""
    return float(math.sqrt(2) * stats.norm.ppf(auc))


def ideal_dprime(maps_CHW: np.ndarray, mask_HW: np.ndarray, lesion_HW: np.ndarray, sigma: float) -> float:
    """The measurements' own d' for a known lesion ``ℓ``: ``√2 ‖M F S ℓ‖ / σ`` (σ: complex noise, E|n|² = σ²)."""
    signal = numpy_fft2c(maps_CHW.astype(np.complex128) * lesion_HW[None]) * mask_HW[None]
    return float(math.sqrt(2) * np.sqrt((np.abs(signal) ** 2).sum()) / sigma)


def false_structures(
    recon_0: np.ndarray, truth_0: np.ndarray, interior: np.ndarray, radius: float, sign: int
) -> list[tuple[int, int, float]]:
    """``(row, col, conspicuity)`` of each site in ``interior`` where the lesion-free reconstruction shows a spot
    of ``radius`` and ``sign`` (+1 bright, -1 dark) that the truth does not, at least as strong as the faintest
    inserted lesion on that background (module docstring)."""
    half = math.ceil(2 * radius + 3.5)
    template = _zero_mean_template((2 * half + 1, 2 * half + 1), half, half, radius)
    disc = smooth_disc(template.shape, half, half, radius)
    response = sign * ndimage.correlate(np.abs(recon_0), template, mode="nearest")
    truth_response = sign * ndimage.correlate(np.abs(truth_0), template, mode="nearest")
    nearby_truth = ndimage.maximum_filter(truth_response, size=2 * TRUTH_TOLERANCE_PX + 1, mode="nearest")
    excess = response - np.maximum(nearby_truth, 0.0)
    # a lesion of contrast c responds with c μ_bg Σb²: dividing by μ_bg Σb² reads a response as a contrast
    unit = ndimage.correlate(np.abs(truth_0), disc, mode="nearest") / disc.sum() * (disc**2).sum()
    conspicuity = np.minimum(excess, response) / np.maximum(unit, 1e-30)
    window = 2 * math.ceil(SITE_SPACING * radius) + 1
    peaks = (excess == ndimage.maximum_filter(excess, size=window, mode="nearest")) & interior
    peaks &= conspicuity > FAINTEST_CONTRAST
    return [(int(r), int(c), round(float(conspicuity[r, c]), 6)) for r, c in np.argwhere(peaks)]
