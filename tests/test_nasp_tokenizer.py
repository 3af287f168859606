"""NASP part 1: the AQ-VAE tokenizer against closed forms and physical properties, and the training loop
features it needs (two optimisers, stages, mask hierarchies, EMA buffers)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from benchmark.errors import BenchmarkError, InputError
from benchmark.registry import get_training_class
from benchmark.training.batches import make_batch, training_masks
from benchmark.training.loop import Trainer, TrainRequest
from methods.nasp.blocks import ResnetBlock
from methods.nasp.config import TOKENIZER_CONFIGS
from methods.nasp.levels import LEVELS, level_images
from methods.nasp.quantizer import AdditiveQuantizer, phi_indices
from methods.nasp.tokenizer import AQVAE, load_var_vqvae

TINY = TOKENIZER_CONFIGS["tiny"]


def quantizer(codebook_size=3, dim=2, decay=0.8, grids=(11, 12, 13, 14, 15, 16)) -> AdditiveQuantizer:
    return AdditiveQuantizer(dim, codebook_size, grids, 0.5, 4, decay, 1, distributed=False)


def set_codebook(module: AdditiveQuantizer, codes: torch.Tensor, cluster_size: torch.Tensor) -> None:
    book = module.codebook._codebook
    book.initted.fill_(True)
    book.embed.copy_(codes[None])
    book.cluster_size.copy_(cluster_size[None])
    book.embed_avg.copy_((codes * cluster_size[:, None])[None])


def test_rotation_trick_returns_the_code_and_scales_a_parallel_gradient_by_the_norm_ratio():
    module = quantizer(codebook_size=2, dim=3).train()
    codes = torch.tensor([[2.0, 0.0, 0.0], [0.0, -1.0, 1.0]])
    set_codebook(module, codes, torch.ones(2))
    before = module.codebook.codebook.clone()
    encoder = (0.5 * codes[1]).reshape(1, 1, 3).requires_grad_(True)  # parallel to code 1, half its norm
    out, indices, _ = module.codebook(encoder)
    assert indices.item() == 1
    assert torch.allclose(out.detach()[0, 0], before[1], atol=1e-6)
    upstream = torch.tensor([[[0.3, -0.7, 0.2]]])
    out.backward(upstream)
    ratio = before[1].norm() / encoder.detach().norm()  # |q| / |e| = 2
    assert torch.allclose(encoder.grad, upstream * ratio, atol=1e-5)


def test_one_ema_update_per_step_matches_a_hand_computed_three_code_update():
    decay, eps = 0.8, 1e-5
    module = quantizer(codebook_size=3, dim=2, decay=decay, grids=(1, 2)).train()
    codes = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    sizes = torch.tensor([2.0, 1.0, 1.0])
    set_codebook(module, codes, sizes)
    # Level 0 (1x1 grid) and level 1 (2x2 grid): five tokens in one call, one EMA update.
    level0 = torch.tensor([0.9, 0.1]).reshape(1, 2, 1, 1)
    level1 = torch.tensor([[0.1, 1.2, -0.8, 1.1], [0.0, 0.9, -1.2, -0.1]]).reshape(1, 2, 2, 2)
    module([level0, level1], [0, 1])
    tokens = torch.cat([level0.flatten(2), level1.flatten(2)], dim=2)[0].T  # (5, 2)
    assignment = torch.cdist(tokens, codes).argmin(dim=1)  # independent nearest-code search
    counts = torch.bincount(assignment, minlength=3).float()
    sums = torch.zeros(3, 2).index_add_(0, assignment, tokens)
    cluster = decay * sizes + (1 - decay) * counts
    average = decay * codes * sizes[:, None] + (1 - decay) * sums
    smoothed = (cluster + eps) / (cluster.sum() + 3 * eps) * cluster.sum()
    assert torch.allclose(module.codebook.codebook, average / smoothed[:, None], atol=1e-6)


def test_token_grids_are_11_to_16_for_a_256_image_and_all_levels_share_one_encoder_pass():
    torch.manual_seed(0)
    model = AQVAE(TINY).eval()
    images = [torch.randn(2, 3, 256, 256) for _ in LEVELS]
    calls = []
    model.encoder.register_forward_hook(lambda _m, inputs, _o: calls.append(inputs[0].shape[0]))
    with torch.no_grad():
        decoded, quantized = model(images, list(range(6)), torch.tensor([0, 3]))
    assert [tuple(i.shape) for i in quantized.indices] == [(2, g * g) for g in (11, 12, 13, 14, 15, 16)]
    assert decoded.shape == (2, 3, 256, 256)
    assert calls == [12]  # 6 levels x 2 slices in one pass


def test_fusion_of_one_level_is_that_level_alone_and_of_two_is_their_mean():
    torch.manual_seed(0)
    module = quantizer(codebook_size=8, dim=4)
    code0, code3 = torch.randn(1, 4, 11, 11), torch.randn(1, 4, 14, 14)

    def phi(h, conv):  # 0.5 h + 0.5 Conv3x3(h), written out
        return 0.5 * h + 0.5 * F.conv2d(h, conv.weight, conv.bias, padding=1)

    alone0 = phi(F.interpolate(code0, size=(16, 16), mode="bicubic"), module.quant_resi.qresi_ls[0])
    alone3 = phi(F.interpolate(code3, size=(16, 16), mode="bicubic"), module.quant_resi.qresi_ls[2])
    with torch.no_grad():
        assert torch.allclose(module.fuse([code0], [0]), alone0, atol=1e-6)
        assert torch.allclose(module.fuse([code0, code3], [0, 3]), (alone0 + alone3) / 2, atol=1e-6)


def test_perturbing_one_phi_convolution_changes_only_the_levels_it_serves():
    assert phi_indices(6, 4) == [0, 0, 1, 2, 3, 3]  # VAR's PhiPartiallyShared for six scales
    torch.manual_seed(0)
    module = quantizer(codebook_size=8, dim=4)
    codes = [torch.randn(1, 4, g, g) for g in (11, 12, 13, 14, 15, 16)]
    with torch.no_grad():
        before = [module.fuse([q], [k]) for k, q in enumerate(codes)]
        module.quant_resi.qresi_ls[3].weight.add_(0.1)
        after = [module.fuse([q], [k]) for k, q in enumerate(codes)]
    changed = [not torch.equal(b, a) for b, a in zip(before, after, strict=True)]
    assert changed == [False, False, False, False, True, True]


def test_film_with_a_zero_label_embedding_is_the_plain_residual_block():
    torch.manual_seed(0)
    block = ResnetBlock(16, 32, label_dim=8)
    torch.nn.init.normal_(block.film.weight)  # a trained conditioning path, silenced only by the zero label
    x = torch.randn(2, 16, 8, 8)
    plain = block.nin_shortcut(x) + block.conv2(
        F.silu(block.norm2(block.conv1(F.silu(block.norm1(x)))))
    )  # VAR's ResnetBlock, composed by hand
    with torch.no_grad():
        assert torch.allclose(block(x, torch.zeros(2, 8)), plain, atol=1e-6)
        assert not torch.allclose(block(x, torch.ones(2, 8)), plain, atol=1e-3)


def test_level_inputs_are_nested_and_the_r32_level_is_what_the_methods_see(ci_embedded):
    from benchmark.data import LoadOptions, SliceDataset, dataset_files
    from benchmark.recipes import TrainConfig

    dataset = SliceDataset(dataset_files(ci_embedded, "train")[:1], LoadOptions())
    pattern, masks, chains = training_masks(TrainConfig(), 3, [0, 1], ("gaussian_2d",), (256, 256), hierarchy=True)
    batch, target = make_batch(dataset, [0, 1], masks, pattern, 32, chains)
    ladder = [r for r in LEVELS if r > 1]
    for coarse, fine in zip(ladder[:-1], ladder[1:], strict=True):
        assert torch.all(target.hierarchy[fine] | ~target.hierarchy[coarse])  # every R=coarse sample kept
    assert torch.equal(target.hierarchy[32], batch.mask)
    images = level_images(target.kspace, batch.maps, target.hierarchy)
    assert torch.allclose(images[0], batch.operator().adjoint(batch.kspace), atol=1e-6)
    assert torch.allclose(images[-1].abs(), target.magnitude, rtol=1e-3, atol=1e-4)


def test_stages_are_named_and_a_missing_stage_is_one_clear_error():
    assert get_training_class("nasp", "tokenizer").stage == "tokenizer"
    with pytest.raises(InputError, match="--stage tokenizer"):
        get_training_class("nasp", None)
    with pytest.raises(InputError, match="drop --stage"):
        get_training_class("unet", "tokenizer")


def tokenizer_request(data, out, **overrides) -> TrainRequest:
    settings = dict(
        method="nasp", stage="tokenizer", profile="tiny", data=data, out=out, device="cpu", steps=3, batch_size=2,
        masks=("radial",),
    )  # fmt: skip
    return TrainRequest(**(settings | overrides))


def test_two_optimizer_training_resumes_bit_for_bit_and_records_its_substitutions(ci_embedded, tmp_path, monkeypatch):
    stage = get_training_class("nasp", "tokenizer")
    monkeypatch.setitem(stage.train_configs, "tiny", replace(stage.train_configs["tiny"], ema_decay=0.5))
    straight = Trainer(tokenizer_request(ci_embedded, tmp_path / "straight"))
    straight.fit()
    Trainer(tokenizer_request(ci_embedded, tmp_path / "split", stop_after=1)).fit()
    resumed = Trainer(tokenizer_request(ci_embedded, tmp_path / "split", resume=True))
    assert resumed.step == 1
    resumed.fit()
    for name in ("model", "discriminator"):
        a, b = straight.modules[name].state_dict(), resumed.modules[name].state_dict()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}.{key}"
    assert straight.model.quantize.codebook._codebook.initted.item()  # k-means ran on the first batch
    # The EMA copy carries the live codebook (a buffer) verbatim, never a stale or averaged one.
    assert torch.equal(straight.ema.module.quantize.codebook.codebook, straight.model.quantize.codebook.codebook)
    payload = torch.load(tmp_path / "straight" / "best.pt", weights_only=True)
    assert payload["stage"] == "tokenizer" and "discriminator" in payload["modules"]
    assert "stlpips_alex" in payload["provenance"]["substitutions"]["discriminator"]
    assert payload["provenance"]["var_vqvae"] is None


def test_codebook_statistics_are_all_reduced_under_a_process_group(tmp_path):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'group'}", rank=0, world_size=1)
    try:
        book = AQVAE(TINY, distributed=dist.is_initialized()).quantize.codebook._codebook
        assert book.all_reduce_fn is dist.all_reduce and book.kmeans_all_reduce_fn is dist.all_reduce
    finally:
        dist.destroy_process_group()


def test_biomedclip_discriminator_plumbing_on_a_random_vit_of_its_shape():
    """BiomedCLIP's visual trunk is timm's ViT-B/16 at 224²; with random weights (the real ones are a
    local download) the heads must see blocks 2, 5, 8, 11 and train without touching the trunk."""
    from timm.models.vision_transformer import VisionTransformer

    from methods.nasp.discriminator import ProjectedHeads, ViTFeatures, lsgan_discriminator_loss

    torch.manual_seed(0)
    vit = VisionTransformer(img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12, num_classes=0)
    features = ViTFeatures(vit)
    seen = []
    for index, block in enumerate(vit.blocks):
        block.register_forward_hook(lambda _m, _i, out, index=index: seen.append((index, out)))
    images = torch.rand(2, 3, 224, 224)
    taps = features(images)
    by_block = dict(seen)
    assert [t.shape for t in taps] == [(2, 197, 768)] * 4
    assert all(torch.equal(tap, by_block[b]) for tap, b in zip(taps, (2, 5, 8, 11), strict=True))
    heads = ProjectedHeads(features.channels, hidden=32)
    loss = lsgan_discriminator_loss(heads(features(images)), heads(features(images.flip(-1))))
    loss.backward()
    assert all(p.grad is not None for p in heads.parameters())
    assert all(p.grad is None and not p.requires_grad for p in vit.parameters())


VAR_LAYOUT = Path(__file__).parent / "fixtures" / "var_vqvae_ch160v4096z32.json"


def test_a_checkpoint_in_vars_vqvae_layout_initialises_the_paper_tokenizer_key_for_key(tmp_path):
    """VAR's ``vae_ch160v4096z32.pth`` (key names and shapes from VAR's own VQVAE, the committed fixture) loads
    into the paper AQ-VAE: every weight but the codebook lands at its own key unchanged; only the codebook, the
    label embedding and FiLM (new in the AQ-VAE) are left out; a foreign key is refused."""
    shapes = json.loads(VAR_LAYOUT.read_text())["shapes"]
    state = {key: torch.full(shape, float(i)) for i, (key, shape) in enumerate(shapes.items())}  # a value per key
    path = tmp_path / "vae_ch160v4096z32.pth"
    torch.save(state, path)
    model = AQVAE(TOKENIZER_CONFIGS["paper"])
    load_var_vqvae(model, path)
    own = model.state_dict()
    codebook = ("quantize.embedding", "quantize.ema_vocab")
    for key, value in state.items():
        if not key.startswith(codebook):
            assert torch.equal(own[key], value), key
    untouched = {key for key in own if key not in state}
    assert all(key.startswith(("label_embedding.", "quantize.codebook.")) or ".film." in key for key in untouched)

    torch.save(state | {"encoder.extra.weight": torch.zeros(1)}, path)
    with pytest.raises(BenchmarkError, match="unexpected"):
        load_var_vqvae(AQVAE(TOKENIZER_CONFIGS["paper"]), path)
