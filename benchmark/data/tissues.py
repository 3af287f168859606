"""Tissue classes of the embedded head and their 3 T relaxation values, with the signal equations.

Values and sources are listed in ``DATASET.md``. Brain tissues: Stanisz et al., MRM 2005 (WM, GM);
CSF from Lu et al., JMRI 2005 and Spijkerman et al., MAGMA 2018. Scalp fat, skeletal muscle and fatty
(yellow) marrow: Gold et al., AJR 2004 (3 T). Cortical bone: T2* of a few hundred microseconds (Du &
Bydder, NMR Biomed 2013), so it gives no signal at clinical echo times. Skin (dermis): Barral et al.,
MRM 2010 (3 T). Proton densities are relative to CSF.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Tissue:
    """Relaxation times (ms) and relative proton density of one tissue class."""

    t1_ms: float
    t2_ms: float
    proton_density: float


RELAXATION_3T: dict[str, Tissue] = {
    "wm": Tissue(t1_ms=1084.0, t2_ms=69.0, proton_density=0.69),
    "gm": Tissue(t1_ms=1820.0, t2_ms=99.0, proton_density=0.80),
    "csf": Tissue(t1_ms=4000.0, t2_ms=2000.0, proton_density=1.00),
    "fat": Tissue(t1_ms=371.0, t2_ms=133.0, proton_density=0.90),
    "marrow": Tissue(t1_ms=365.0, t2_ms=133.0, proton_density=0.85),
    "muscle": Tissue(t1_ms=1420.0, t2_ms=32.0, proton_density=0.75),
    "skin": Tissue(t1_ms=1100.0, t2_ms=40.0, proton_density=0.70),
    "bone": Tissue(t1_ms=220.0, t2_ms=0.4, proton_density=0.20),
}
BRAIN_TISSUES = ("gm", "wm", "csf")
#: Tissues outside the brain (the CSF rim joins ``csf``).
HEAD_TISSUES = ("csf", "bone", "marrow", "muscle", "fat", "skin")

#: Sequence timings (ms), typical of clinical axial brain acquisitions such as fastMRI's AXT1/AXT2/AXFLAIR.
T1_SPIN_ECHO = {"tr": 500.0, "te": 10.0}
T2_SPIN_ECHO = {"tr": 6000.0, "te": 100.0}
FLAIR_TR, FLAIR_TE = 9000.0, 120.0
#: Inversion time that nulls CSF: 1 - 2 exp(-TI/T1) + exp(-TR/T1) = 0.
FLAIR_TI = RELAXATION_3T["csf"].t1_ms * math.log(2.0 / (1.0 + math.exp(-FLAIR_TR / RELAXATION_3T["csf"].t1_ms)))


def spin_echo(tissue: Tissue, tr: float, te: float) -> float:
    """Spin-echo signal PD (1 - exp(-TR/T1)) exp(-TE/T2)."""
    return tissue.proton_density * (1 - math.exp(-tr / tissue.t1_ms)) * math.exp(-te / tissue.t2_ms)


def inversion_recovery(tissue: Tissue) -> float:
    """Magnitude inversion-recovery signal PD |1 - 2 exp(-TI/T1) + exp(-TR/T1)| exp(-TE/T2)."""
    recovery = 1 - 2 * math.exp(-FLAIR_TI / tissue.t1_ms) + math.exp(-FLAIR_TR / tissue.t1_ms)
    return tissue.proton_density * abs(recovery) * math.exp(-FLAIR_TE / tissue.t2_ms)


def signal(contrast: str, tissue: str) -> float:
    """The relative signal of ``tissue`` in ``contrast`` (T1/T2: spin echo; FLAIR: inversion recovery)."""
    values = RELAXATION_3T[tissue]
    if contrast == "T1":
        return spin_echo(values, **T1_SPIN_ECHO)
    if contrast == "T2":
        return spin_echo(values, **T2_SPIN_ECHO)
    if contrast == "FLAIR":
        return inversion_recovery(values)
    raise ValueError(f"unknown contrast {contrast!r}; known: T1, T2, FLAIR")
