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


def inversion_recovery(tissue: Tissue, ti: float = FLAIR_TI, tr: float = FLAIR_TR, te: float = FLAIR_TE) -> float:
    """Magnitude inversion-recovery signal PD |1 - 2 exp(-TI/T1) + exp(-TR/T1)| exp(-TE/T2)."""
    recovery = 1 - 2 * math.exp(-ti / tissue.t1_ms) + math.exp(-tr / tissue.t1_ms)
    return tissue.proton_density * abs(recovery) * math.exp(-te / tissue.t2_ms)


#: Sequences of another site (the shifted test heads, never trained on): a T1 by inversion recovery with a short
#: TI (MPRAGE-like: grey matter darker than white, CSF dark, fat bright), a fast-spin-echo T2 at TR 3000 / TE 80
#: in which fat stays bright (J-coupling lengthens fat's apparent T2 in FSE trains; modelled as 2 x fat's T2), and
#: a FLAIR whose TI (2000 ms) no longer nulls CSF.
SHIFTED_T1 = {"ti": 900.0, "tr": 2000.0, "te": 3.0}
SHIFTED_T2 = {"tr": 3000.0, "te": 80.0}
SHIFTED_FLAIR = {"ti": 2000.0, "tr": 9000.0, "te": 120.0}
FSE_FAT_T2_FACTOR = 2.0
PROTOCOLS = ("clinical", "shifted")


def signal(contrast: str, tissue: str, protocol: str = "clinical") -> float:
    """The relative signal of ``tissue`` in ``contrast`` under ``protocol``: ``clinical`` (T1/T2 spin echo, FLAIR
    inversion recovery nulling CSF) or ``shifted`` (the sequences above)."""
    values = RELAXATION_3T[tissue]
    if protocol == "shifted":
        if contrast == "T2" and tissue in ("fat", "marrow"):
            values = Tissue(values.t1_ms, values.t2_ms * FSE_FAT_T2_FACTOR, values.proton_density)
        sequences = {"T1": lambda: inversion_recovery(values, **SHIFTED_T1),
                     "T2": lambda: spin_echo(values, **SHIFTED_T2),
                     "FLAIR": lambda: inversion_recovery(values, **SHIFTED_FLAIR)}  # fmt: skip
    elif protocol == "clinical":
        sequences = {"T1": lambda: spin_echo(values, **T1_SPIN_ECHO), "T2": lambda: spin_echo(values, **T2_SPIN_ECHO),
                     "FLAIR": lambda: inversion_recovery(values)}  # fmt: skip
    else:
        raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    if contrast not in sequences:
        raise ValueError(f"unknown contrast {contrast!r}; known: T1, T2, FLAIR")
    return sequences[contrast]()
