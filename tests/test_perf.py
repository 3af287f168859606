"""Performance cases (pytest-benchmark). Disabled by default (run once as correctness checks);
measure with ``python -m pytest tests/test_perf.py --benchmark-enable``."""

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from benchmark.data import LoadOptions, SliceDataset, dataset_files, default_data_root
from benchmark.masks import make_mask
from benchmark.metrics.ssim import ssim
from benchmark.registry import get_method_class
from benchmark.runner import RunConfig, run_benchmark
from benchmark.training.batches import make_batch

SKIMAGE_OPTIONS = {
    "uniform": {},
    "gaussian": dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False),
}


@pytest.fixture(scope="module")
def slices_256():
    rng = np.random.default_rng(0)
    x = rng.random((48, 256, 256))  # the embedded test split: 2 subjects x 3 contrasts x 8 slices
    return x, np.clip(x + 0.1 * rng.normal(size=x.shape), 0, None)


@pytest.mark.parametrize("window", ["uniform", "gaussian"])
def test_perf_ssim_batched_torch(benchmark, slices_256, window):
    x, y = (torch.from_numpy(a) for a in slices_256)
    values = benchmark(ssim, x, y, 1.0, window)
    expected = [
        structural_similarity(slices_256[0][i], slices_256[1][i], data_range=1.0, **SKIMAGE_OPTIONS[window])
        for i in (0, 47)
    ]
    np.testing.assert_allclose(values[[0, 47]].numpy(), expected, atol=1e-4)


@pytest.mark.parametrize("window", ["uniform", "gaussian"])
def test_perf_ssim_skimage_per_slice(benchmark, slices_256, window):
    x, y = slices_256

    def per_slice():
        return [structural_similarity(x[i], y[i], data_range=1.0, **SKIMAGE_OPTIONS[window]) for i in range(len(x))]

    assert len(benchmark(per_slice)) == 48


def test_perf_scoring_pass_zero_filled(benchmark, tmp_path, small_embedded):
    """One full inference + scoring pass of zero_filled over a test split (the embedded one if built)."""
    root = default_data_root()
    data, size = (root, (256, 256)) if (root / "manifest.json").exists() else (small_embedded, (64, 64))
    counter = iter(range(1000))

    def one_pass():
        config = RunConfig(
            methods=("zero_filled",),
            masks=("cartesian_x", "cartesian_y", "gaussian_2d", "radial"),
            contrasts=("T1", "T2", "FLAIR"),
            data=data,
            out=tmp_path / f"run{next(counter)}",
            device="cpu",
            load=LoadOptions(size=size),
        )
        return run_benchmark(config)

    table = benchmark.pedantic(one_pass, rounds=1, iterations=1)
    assert table["ssim_paper"].between(0, 1).all()


@pytest.mark.parametrize("name", ["unet", "e2evarnet", "recurrentvarnet"])
def test_perf_training_step(benchmark, name, small_embedded):
    """One optimisation step of a tiny model (batch 2) on the embedded data if built, else the small set."""
    root = default_data_root()
    data, size = (root, (256, 256)) if (root / "manifest.json").exists() else (small_embedded, (64, 64))
    dataset = SliceDataset(dataset_files(data, "train")[:1], LoadOptions(size=size))
    masks = [make_mask("radial", size, 32, seed) for seed in (0, 1)]
    batch, target = make_batch(dataset, [0, 1], masks, "radial", 32)
    method = get_method_class(name)("tiny", torch.device("cpu"), for_training=True)
    optimizer = torch.optim.AdamW(method.model.parameters(), lr=1e-4)

    def step():
        loss = method.loss(batch, target.magnitude)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    assert np.isfinite(benchmark(step))


@pytest.mark.parametrize("part", ["generate", "end_to_end"])
@pytest.mark.parametrize("use_cache", [True, False], ids=["kv_cache", "no_cache"])
def test_perf_nasp_decoding_tiny(benchmark, use_cache, part):
    """Scale-by-scale decoding of one image (tiny profile, random weights): ``generate`` (the R = 32 encoding,
    the context features and the transformer's five predicted scales), and end to end with the tokenizer's
    decoder too (``generate`` + ``decode``)."""
    from methods.nasp.config import TOKENIZER_CONFIGS, TRANSFORMER_CONFIGS
    from methods.nasp.decoding import generate
    from methods.nasp.model import NASPModel
    from methods.nasp.tokenizer import AQVAE

    torch.manual_seed(0)
    tokenizer = AQVAE(TOKENIZER_CONFIGS["tiny"])
    tokenizer.quantize.codebook._codebook.embed.normal_()
    tokenizer.quantize.codebook._codebook.initted.fill_(True)
    model = NASPModel(tokenizer, TRANSFORMER_CONFIGS["tiny"]).eval()
    image, pattern = torch.randn(1, 3, 256, 256), torch.tensor([0])

    def decode_image():
        with torch.no_grad():
            indices, _ = generate(model, image, pattern, use_cache=use_cache)
            return model.decode(indices)

    if part == "end_to_end":
        assert benchmark(decode_image).shape == (1, 3, 256, 256)
        return
    with torch.no_grad():
        indices, _ = benchmark(lambda: generate(model, image, pattern, use_cache=use_cache))
    assert len(indices) == 6


def synthetic_batch_256(batch_size=2, coils=8):
    """A 256 x 256, 8-coil radial R = 32 batch: the shipped checkpoints' setting (timing needs no real data)."""
    from benchmark.method import ReconBatch
    from benchmark.physics import MultiCoilOperator, birdcage_maps

    generator = torch.Generator().manual_seed(0)
    maps = birdcage_maps(coils, (256, 256)).to(torch.complex64).expand(batch_size, -1, -1, -1)
    mask = torch.stack([make_mask("radial", (256, 256), 32, seed) for seed in range(batch_size)])
    image = torch.randn(batch_size, 256, 256, dtype=torch.complex64, generator=generator)
    batch = ReconBatch(MultiCoilOperator(maps, mask).forward(image), mask, maps, "radial", 32)
    return batch, image.abs()


@pytest.mark.parametrize("name", ["swinunet", "mambarecon"])
@pytest.mark.parametrize("phase", ["train_step", "inference"])
def test_perf_swinunet_mambarecon(benchmark, name, phase):
    """One optimisation step (batch 2) or one reconstruction (batch 1) of the tiny profile at 256 x 256."""
    method = get_method_class(name)("tiny", torch.device("cpu"), for_training=True)
    batch, target = synthetic_batch_256(2 if phase == "train_step" else 1)
    optimizer = torch.optim.AdamW(method.model.parameters(), lr=1e-4)

    def train_step():
        loss = method.loss(batch, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    def inference():
        with torch.no_grad():
            return method.reconstruct(batch).abs().mean().item()

    assert np.isfinite(benchmark(train_step if phase == "train_step" else inference))


def test_flop_counter_counts_a_linear_layer_and_the_kv_cache_saves_work():
    from benchmark.perf import count_flops
    from methods.nasp.size import nasp_size

    layer = torch.nn.Linear(64, 32)
    assert count_flops(layer, torch.randn(5, 64)) == 2 * 5 * 64 * 32  # one multiply-add = 2 operations
    size = nasp_size("tiny")
    assert size["flops_per_image_no_cache"] > size["flops_per_image_kv_cache"] > 0
