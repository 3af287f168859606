"""Feature-space metrics through their reference libraries: LPIPS (``lpips``), DISTS (``DISTS_pytorch``)
and shift-tolerant LPIPS (``stlpips_pytorch``, a different published metric reported under its own name).

Inputs are grey magnitude images: each is divided by its own maximum (clipped to [0, 1]) and repeated
to three channels. LPIPS and ST-LPIPS receive [0, 1] with ``normalize=True`` (they rescale to [-1, 1]);
DISTS receives [0, 1], its documented range. Models are built on first use. A missing or non-genuine
backbone makes the metric unavailable with a one-line reason; it is never computed on random weights.
"""

from __future__ import annotations

from importlib import metadata, resources
from pathlib import Path

import torch

from benchmark.metrics.base import Metric, ScoringBatch
from benchmark.metrics.weights import backbone_problem


def to_rgb01(images_BHW: torch.Tensor) -> torch.Tensor:
    """``(B, H, W)`` magnitudes -> ``(B, 3, H, W)`` float32 in [0, 1], each image by its own maximum."""
    images = images_BHW.to(torch.float32)
    peak = images.amax(dim=(-2, -1), keepdim=True)
    scaled = (images / torch.where(peak > 0, peak, torch.ones_like(peak))).clamp(0, 1)
    return scaled.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


class _FeatureMetric(Metric):
    direction = "lower"
    backbone = ""

    def __init__(self, device: str | torch.device = "cpu", verify_weights: bool = True) -> None:
        super().__init__()
        self.device = torch.device(device)
        self._model: torch.nn.Module | None = None
        if self.backbone:
            self.reason = backbone_problem(self.backbone, verify=verify_weights)
            self.available = not self.reason

    def model(self) -> torch.nn.Module:
        if self._model is None:
            self._model = self.build().to(self.device).eval()
        return self._model

    def build(self) -> torch.nn.Module:
        raise NotImplementedError

    def compute(self, batch: ScoringBatch) -> torch.Tensor:
        x, y = to_rgb01(batch.recon).to(self.device), to_rgb01(batch.target).to(self.device)
        with torch.no_grad():
            return self.distance(self.model(), x, y).reshape(-1).cpu()

    def distance(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return model(x, y, normalize=True)


class LPIPS(_FeatureMetric):
    """LPIPS v0.1 (Zhang et al. 2018) with the package's linear weights on an ImageNet backbone."""

    def __init__(self, net: str = "alex", device: str | torch.device = "cpu", verify_weights: bool = True) -> None:
        self.net = net
        self.backbone = {"alex": "alexnet", "vgg": "vgg16"}[net]
        self.name = f"lpips_{net}"
        self.version = f"lpips-{metadata.version('lpips')}-v0.1-{net}"
        super().__init__(device, verify_weights)

    def build(self) -> torch.nn.Module:
        import lpips

        return lpips.LPIPS(net=self.net, version="0.1", verbose=False)


class DISTS(_FeatureMetric):
    """DISTS (Ding et al. 2020): VGG16 backbone plus the package's alpha/beta weights."""

    name, backbone, version = "dists", "vgg16", "DISTS_pytorch-0.1"

    def build(self) -> torch.nn.Module:
        from DISTS_pytorch import DISTS as DistsModel

        model = DistsModel(load_weights=False)  # backbone from torchvision's cache (checked above)
        alpha_beta = torch.load(_package_file("DISTS_pytorch", "weights.pt"), map_location="cpu", weights_only=True)
        model.alpha.data, model.beta.data = alpha_beta["alpha"], alpha_beta["beta"]
        return model

    def distance(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return model(x, y)


class STLPIPS(_FeatureMetric):
    """Shift-tolerant LPIPS (Ghildyal & Liu, ECCV 2022), AlexNet; complete weights ship on PyPI."""

    name, version = "stlpips_alex", "stlpips_pytorch-0.0.2-alex-shift_tolerant"

    def build(self) -> torch.nn.Module:
        from stlpips_pytorch import stlpips

        model = stlpips.LPIPS(net="alex", variant="shift_tolerant", pretrained=False, verbose=False)
        path = _package_file("stlpips_pytorch", "weights/vST0.0/alex_shift_tolerant.pth")
        state = torch.load(path, map_location="cpu", weights_only=True)
        result = model.load_state_dict(state, strict=False)
        # ``lins.k`` are aliases of ``lin{k}``; anything else missing would leave random weights in place.
        missing = [key for key in result.missing_keys if not key.startswith("lins.")]
        if missing or result.unexpected_keys:
            raise RuntimeError(f"ST-LPIPS weights do not match the model: {missing + result.unexpected_keys}")
        return model


def _package_file(package: str, relative: str) -> Path:
    return Path(str(resources.files(package).joinpath(relative)))
