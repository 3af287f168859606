"""Where the image is: the head region a scoring mask restricts PSNR/SSIM to (``--region head``).

On a 256 x 256 head slice most pixels are air, and whole-image SSIM differences between methods are then
mostly background texture. The head region is derived from the fully sampled target only (scoring only: no
method ever sees it): pixels above ``HEAD_THRESHOLD`` of the slice's maximum, closed with a disc of radius
``HEAD_CLOSING_PX`` (so a scalp ring broken by a dark spot stays a ring), its holes filled (the dark skull,
and CSF on FLAIR, lie inside the head), the largest connected piece kept, and grown by ``HEAD_MARGIN_PX``
pixels so that the edge of the scalp, and errors just outside it, count. Written here with ``scipy.ndimage`` (labelling,
hole filling, dilation): no metric library offers a region-restricted PSNR/SSIM.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

IMAGE, HEAD = "image", "head"
REGIONS = (IMAGE, HEAD)
#: A pixel belongs to the head if its target magnitude is above this fraction of the slice's maximum.
HEAD_THRESHOLD = 0.1
#: Radius of the disc that closes gaps in the thresholded scalp before its holes are filled.
HEAD_CLOSING_PX = 4
#: Pixels the thresholded, filled head is grown by.
HEAD_MARGIN_PX = 3
REGION_DESCRIPTIONS = {
    IMAGE: "whole image",
    HEAD: f"head region only (target above {HEAD_THRESHOLD:g} of its slice maximum, largest piece, holes filled, "
    f"closed over {HEAD_CLOSING_PX} px, grown by {HEAD_MARGIN_PX} px; derived from the fully sampled target for "
    "scoring only)",
}


def head_region(target_BHW: torch.Tensor) -> torch.Tensor:
    """Boolean head masks ``(B, H, W)`` of magnitude targets (module docstring), on the targets' device."""
    masks = [_head_of_slice(image) for image in target_BHW.detach().to("cpu", torch.float64).numpy()]
    return torch.from_numpy(np.stack(masks)).to(target_BHW.device)


def _head_of_slice(image_HW: np.ndarray) -> np.ndarray:
    peak = image_HW.max()
    if not peak > 0:
        return np.ones(image_HW.shape, dtype=bool)  # nothing to find: the whole image
    radius = HEAD_CLOSING_PX
    offsets = np.arange(-radius, radius + 1)
    disc = offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius**2
    # Padded so that the closing does not treat the field of view's edge as foreground.
    above = np.pad(image_HW > HEAD_THRESHOLD * peak, radius)
    closed = ndimage.binary_closing(above, structure=disc)[radius:-radius, radius:-radius]
    labels, count = ndimage.label(ndimage.binary_fill_holes(closed))
    if count == 0:
        return np.ones(image_HW.shape, dtype=bool)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[0] = 0
    return ndimage.binary_dilation(labels == int(np.argmax(sizes)), iterations=HEAD_MARGIN_PX)


def region_suffix(region: str) -> str:
    """The metric-column suffix of a scoring region (``psnr_paper`` vs ``psnr_paper_head``)."""
    if region not in REGIONS:
        raise ValueError(f"unknown scoring region {region!r}; known: {', '.join(REGIONS)}")
    return "" if region == IMAGE else f"_{region}"
