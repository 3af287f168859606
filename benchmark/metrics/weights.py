"""ImageNet backbone weights for LPIPS and DISTS: where they live, whether they are genuine, importing them.

No package ships torchvision's AlexNet/VGG16 ImageNet weights, and this suite never downloads. The
backbones are read from torchvision's own cache (``$TORCH_HOME/hub/checkpoints``), where torchvision,
``lpips`` and ``DISTS_pytorch`` look first. A file is accepted only if its sha256 starts with the
prefix torchvision publishes in the file name (``alexnet-owt-7be5be79.pth``): a metric computed on
random or foreign weights would be a number that means nothing.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
import torchvision.models as tvm

from benchmark.errors import InputError
from benchmark.io import atomic_path, sha256_file


@dataclass(frozen=True)
class Backbone:
    key: str
    file_name: str
    hash_prefix: str
    used_by: str


def _backbone(key: str, weights: tvm.WeightsEnum, used_by: str) -> Backbone:
    file_name = weights.url.rsplit("/", 1)[-1]
    prefix = re.search(r"-([0-9a-f]{8,})\.", file_name)
    return Backbone(key, file_name, prefix.group(1) if prefix else "", used_by)


BACKBONES = {
    "alexnet": _backbone("alexnet", tvm.AlexNet_Weights.IMAGENET1K_V1, "lpips_alex"),
    "vgg16": _backbone("vgg16", tvm.VGG16_Weights.IMAGENET1K_V1, "lpips_vgg, dists"),
}


def checkpoint_dir() -> Path:
    """torchvision's weight cache: ``torch.hub.get_dir()/checkpoints`` (honours ``$TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def backbone_problem(key: str, verify: bool = True) -> str:
    """Empty string if the backbone is present (and genuine when ``verify``); else a one-line reason."""
    backbone = BACKBONES[key]
    path = checkpoint_dir() / backbone.file_name
    if not path.is_file():
        hint = "import it with `python -m benchmark weights --import FILE`"
        return f"{backbone.file_name} not found in {checkpoint_dir()}; {hint}"
    if verify and not _sha256_cached(path, path.stat().st_mtime_ns, path.stat().st_size).startswith(
        backbone.hash_prefix
    ):
        return f"{path} is not torchvision's {backbone.key} ImageNet file (sha256 prefix {backbone.hash_prefix})"
    return ""


@lru_cache(maxsize=8)
def _sha256_cached(path: Path, mtime_ns: int, size: int) -> str:
    # Keyed on mtime and size so a replaced file is hashed again; hashing VGG16 (528 MB) takes ~1 s.
    return sha256_file(path)


def import_backbone(source: str | Path) -> Path:
    """Copy a user-supplied weight file into the cache under torchvision's name, if its hash matches."""
    source = Path(source)
    if not source.is_file():
        raise InputError(f"{source}: no such file")
    digest = sha256_file(source)
    for backbone in BACKBONES.values():
        if digest.startswith(backbone.hash_prefix):
            target = checkpoint_dir() / backbone.file_name
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
            return target
    known = ", ".join(b.file_name for b in BACKBONES.values())
    raise InputError(f"{source}: sha256 {digest[:12]}… matches none of torchvision's {known}")
