"""ImageNet backbone weights for LPIPS and DISTS: where they live, whether they are genuine, importing them.

No package ships torchvision's AlexNet/VGG16 ImageNet weights, and the suite never downloads on its
own. The backbones are read from torchvision's own cache (``$TORCH_HOME/hub/checkpoints``), where
torchvision, ``lpips`` and ``DISTS_pytorch`` look first. A user brings them with ``weights --import``
(a file they have) or ``weights --download`` (from torchvision's own URLs, only when asked). A file is
accepted only if its sha256 starts with the prefix torchvision publishes in the file name
(``alexnet-owt-7be5be79.pth``): a metric computed on random or foreign weights would be a number that
means nothing.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
import torchvision.models as tvm
from tqdm import tqdm

from benchmark.errors import BenchmarkError, InputError
from benchmark.io import atomic_path, sha256_file


@dataclass(frozen=True)
class Backbone:
    key: str
    file_name: str
    hash_prefix: str
    used_by: str
    url: str = ""


def _backbone(key: str, weights: tvm.WeightsEnum, used_by: str) -> Backbone:
    file_name = weights.url.rsplit("/", 1)[-1]
    prefix = re.search(r"-([0-9a-f]{8,})\.", file_name)
    return Backbone(key, file_name, prefix.group(1) if prefix else "", used_by, weights.url)


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
    # Reasons name no machine path: they end up in run metadata and in the footnotes of shared tables.
    if not path.is_file():
        hint = "see `python -m benchmark weights` (--download or --import FILE)"
        return f"{backbone.file_name} not found in torchvision's weight cache ($TORCH_HOME/hub/checkpoints); {hint}"
    if verify and not _sha256_cached(path, path.stat().st_mtime_ns, path.stat().st_size).startswith(
        backbone.hash_prefix
    ):
        prefix = backbone.hash_prefix
        return f"the cached {backbone.file_name} is not torchvision's {backbone.key} ImageNet file (sha256 {prefix}…)"
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


def download_backbone(key: str, timeout_s: float = 60.0) -> Path:
    """Fetch a backbone from torchvision's URL into the cache, with a progress bar; only a file whose
    sha256 has torchvision's published prefix is installed (anything else leaves nothing behind)."""
    backbone = BACKBONES[key]
    target = checkpoint_dir() / backbone.file_name
    digest = hashlib.sha256()
    with atomic_path(target) as tmp:
        try:
            with urllib.request.urlopen(backbone.url, timeout=timeout_s) as response, open(tmp, "wb") as out:
                size = int(response.headers.get("Content-Length") or 0) or None
                progress = tqdm(total=size, unit="B", unit_scale=True, desc=backbone.file_name)
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    progress.update(len(chunk))
                progress.close()
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", None) or error
            raise BenchmarkError(f"cannot download {backbone.url}: {reason}") from None
        if not digest.hexdigest().startswith(backbone.hash_prefix):
            raise InputError(
                f"{backbone.url}: sha256 {digest.hexdigest()[:12]}… is not torchvision's {backbone.key} "
                f"(prefix {backbone.hash_prefix}); nothing installed"
            )
    return target
