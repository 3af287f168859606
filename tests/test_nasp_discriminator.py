"""The paper-profile discriminator's real loading path: BiomedCLIP's ViT from a local open_clip directory
(``$NASP_BIOMEDCLIP_DIR``), here an open_clip model of BiomedCLIP's form built locally without downloaded weights
(a timm ViT visual tower, 12 blocks), since no package ships BiomedCLIP's weights."""

from __future__ import annotations

import json

import open_clip
import torch

from methods.nasp.discriminator import BIOMEDCLIP_ENV, ViTFeatures, build_feature_network

#: open_clip's local-directory layout: BiomedCLIP's form (timm ViT trunk, linear projection), tiny widths.
CONFIG = {
    "model_cfg": {
        "embed_dim": 32,
        "vision_cfg": {
            "timm_model_name": "vit_tiny_patch16_224",
            "timm_model_pretrained": False,
            "timm_pool": "",
            "timm_proj": "linear",
            "image_size": 224,
        },  # fmt: skip
        "text_cfg": {"context_length": 16, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1},
    },
    "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]},
}


def test_a_local_open_clip_directory_becomes_the_discriminators_feature_network(tmp_path, monkeypatch):
    torch.manual_seed(0)
    saved = open_clip.model.CLIP(**CONFIG["model_cfg"])
    (tmp_path / "open_clip_config.json").write_text(json.dumps(CONFIG))
    torch.save(saved.state_dict(), tmp_path / "open_clip_pytorch_model.bin")
    monkeypatch.setenv(BIOMEDCLIP_ENV, str(tmp_path))

    network, record = build_feature_network("biomedclip")
    assert isinstance(network, ViTFeatures) and record == {"discriminator": f"biomedclip:{tmp_path}"}
    trunk = network.vit
    for key, value in saved.visual.trunk.state_dict().items():  # the weights that were saved, not fresh ones
        assert torch.equal(trunk.state_dict()[key], value), key
    assert not any(parameter.requires_grad for parameter in network.parameters())

    images = torch.rand(2, 3, 224, 224)
    taps = network(images)
    assert [tap.shape for tap in taps] == [torch.Size([2, 197, 192])] * 4  # blocks 2, 5, 8, 11: class + 14² tokens
    with torch.no_grad():  # the last tap is block 11's output: the trunk's own features before its final norm
        features = trunk.forward_features((images - network.mean) / network.std)
    torch.testing.assert_close(trunk.norm(taps[-1]), features)
