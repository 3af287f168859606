"""The shared training loop and the library baselines: overfitting, data consistency, exact resume,
checkpoint integrity, output contracts and DDP equivalence."""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from fastmri.models.varnet import VarNetBlock
from torch.optim.swa_utils import AveragedModel

from benchmark import checkpoint as checkpoint_module
from benchmark.checkpoint import CHECKPOINT_ROOT, checkpoint_reference, load_checkpoint, plain_values, record_shipped
from benchmark.data import LoadOptions, SliceDataset, dataset_files
from benchmark.errors import BenchmarkError, InputError
from benchmark.masks import make_mask
from benchmark.method import ReconBatch
from benchmark.physics import ifft2c, rss
from benchmark.recipes import TrainConfig
from benchmark.registry import get_method_class
from benchmark.training.batches import StepBatches, epoch_batches, training_loader, validation_units
from benchmark.training.loop import Trainer, TrainRequest

LEARNED = ["unet", "e2evarnet", "recurrentvarnet", "mambarecon"]
CPU = torch.device("cpu")


def small_batch(small_embedded, pattern="cartesian_y", count=2):
    dataset = SliceDataset(dataset_files(small_embedded, "train")[:1], LoadOptions(size=(64, 64)))
    items = [dataset[i] for i in range(count)]
    mask = torch.stack([make_mask(pattern, (64, 64), 4, seed=i) for i in range(count)])
    kspace = torch.stack([item["kspace"] for item in items]) * mask[:, None]
    batch = ReconBatch(kspace, mask, torch.stack([item["maps"] for item in items]), pattern, 4)
    return batch, torch.stack([item["target"] for item in items])


@pytest.mark.parametrize("name", LEARNED)
def test_reconstruct_returns_one_image_per_slice(name, small_embedded):
    method = get_method_class(name)("tiny", CPU, for_training=True)
    batch, target = small_batch(small_embedded)
    with torch.no_grad():
        output = method.reconstruct(batch)
    assert output.shape == target.shape
    assert output.dtype in (torch.float32, torch.complex64)
    assert torch.isfinite(output).all()


def assert_overfits_one_batch(method, small_embedded, steps=300):
    """Adam on one slice: the loss must fall at least tenfold."""
    batch, target = small_batch(small_embedded, count=1)
    optimizer = torch.optim.Adam(method.model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        loss = method.loss(batch, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert min(losses[-10:]) < losses[0] / 10, (losses[0], losses[-10:])


@pytest.mark.parametrize("name", LEARNED)
def test_overfitting_one_batch_cuts_the_loss_tenfold(name, small_embedded):
    torch.manual_seed(0)
    assert_overfits_one_batch(get_method_class(name)("tiny", CPU, for_training=True), small_embedded)


class ZeroRegularizer(torch.nn.Module):
    def forward(self, image):
        return torch.zeros_like(image)


def test_varnet_block_keeps_measured_kspace_at_sampled_locations():
    # One cascade with dc_weight 1 and no regulariser: a pure data-consistency step, so the k-space at
    # sampled locations becomes the measurement and unsampled locations keep the current estimate.
    generator = torch.Generator().manual_seed(0)
    block = VarNetBlock(ZeroRegularizer())
    block.dc_weight.data.fill_(1.0)
    current = torch.randn(1, 4, 16, 16, 2, generator=generator)
    measured = torch.randn(1, 4, 16, 16, 2, generator=generator)
    mask = torch.rand(1, 1, 16, 16, 1, generator=generator) < 0.3
    measured = measured * mask
    maps = torch.randn(1, 4, 16, 16, 2, generator=generator)
    output = block(current, measured, mask, maps)
    sampled = mask.expand_as(output)
    torch.testing.assert_close(output[sampled], measured[sampled])
    torch.testing.assert_close(output[~sampled], current[~sampled])


def test_e2evarnet_adapter_passes_kspace_and_mask_in_fastmri_layout(small_embedded):
    # With every cascade reduced to exact data consistency, the output is the RSS of the zero-filled
    # coil images: the adapter hands VarNet the measured k-space and a mask aligned with it.
    method = get_method_class("e2evarnet")("tiny", CPU, for_training=True)
    for cascade in method.model.cascades:
        cascade.model = ZeroRegularizer()
        cascade.dc_weight.data.fill_(1.0)
    batch, _ = small_batch(small_embedded, pattern="radial")
    with torch.no_grad():
        output = method.reconstruct(batch)
    torch.testing.assert_close(output, rss(ifft2c(batch.kspace)).float(), atol=1e-5, rtol=1e-4)


def request_for(data, out, **overrides):
    settings = dict(method="unet", profile="tiny", data=data, out=out, device="cpu", steps=4, size=(64, 64))
    settings.update(overrides)
    return TrainRequest(**settings)


def test_resume_is_bit_for_bit(small_embedded, tmp_path):
    straight = Trainer(request_for(small_embedded, tmp_path / "straight"))
    straight.fit()
    first = Trainer(request_for(small_embedded, tmp_path / "split", stop_after=2))
    first.fit()
    resumed = Trainer(request_for(small_embedded, tmp_path / "split", resume=True))
    assert resumed.step == 2
    resumed.fit()
    for (key, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), key


def test_validation_scores_the_averaged_weights_in_the_methods_own_network_and_puts_the_trained_ones_back(
    small_embedded, tmp_path
):
    """With an EMA, validation must score the averaged weights (as a network loaded with them scores) while the
    method keeps holding the network it was built with, whose training weights come back unchanged."""
    trainer = Trainer(request_for(small_embedded, tmp_path / "ema"))
    network = trainer.method.model
    trainer.ema = AveragedModel(network)
    with torch.no_grad():  # averaged weights unlike the trained ones, as after many steps
        for parameter in trainer.ema.module.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    trained = {k: v.clone() for k, v in network.state_dict().items()}
    held, validation_image = [], trainer.method.validation_image

    def recording(batch, target):
        held.append(trainer.method.model)
        return validation_image(batch, target)

    trainer.method.validation_image = recording
    scores = trainer.validate()
    assert held and all(model is network for model in held)
    assert all(torch.equal(trained[k], v) for k, v in network.state_dict().items())

    reference = Trainer(request_for(small_embedded, tmp_path / "loaded"))
    reference.model.load_state_dict(trainer.ema.module.state_dict())
    assert scores == reference.validate()
    assert scores != Trainer(request_for(small_embedded, tmp_path / "trained")).validate()


def test_checkpoint_refuses_config_mismatch_foreign_method_and_tampering(small_embedded, tmp_path, monkeypatch):
    trainer = Trainer(request_for(small_embedded, tmp_path / "run", steps=2))
    trainer.fit()
    path = tmp_path / "run" / "best.pt"
    config = trainer.method.config_record()
    assert load_checkpoint(path, "unet", config)["step"] == 2
    with pytest.raises(BenchmarkError, match="different unet config .*chans"):
        load_checkpoint(path, "unet", {**config, "chans": config["chans"] * 2})
    with pytest.raises(BenchmarkError, match="checkpoint of 'unet', not 'e2evarnet'"):
        load_checkpoint(path, "e2evarnet")
    # Shipped checkpoints are pinned by sha256 in the manifest.
    monkeypatch.setattr(checkpoint_module, "CHECKPOINT_ROOT", tmp_path)
    monkeypatch.setattr(checkpoint_module, "MANIFEST", tmp_path / "manifest.json")
    shipped = tmp_path / "run" / "best.pt"
    record_shipped(shipped, "test", "hash", "commit")
    assert load_checkpoint(shipped, "unet", config)
    data = bytearray(shipped.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shipped.write_bytes(bytes(data))
    with pytest.raises(BenchmarkError, match="does not match the sha256"):
        load_checkpoint(shipped, "unet", config)
    monkeypatch.setattr(checkpoint_module, "MANIFEST", tmp_path / "absent.json")
    with pytest.raises(BenchmarkError, match="not a readable checkpoint|do not match their recorded digest"):
        load_checkpoint(shipped, "unet", config)


DDP_SCRIPT = textwrap.dedent(
    """
    import sys, torch, torch.distributed as dist
    from pathlib import Path
    from benchmark.training.loop import TrainRequest, Trainer
    data, out, steps, batch = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    trainer = Trainer(TrainRequest(method="unet", profile="tiny", data=data, out=out, device="cpu", steps=steps,
                                   batch_size=batch, size=(64, 64)))
    held, losses = [], trainer.method.training_losses

    def recording(batch, target):  # what the method holds while it computes a training loss
        held.append(trainer.method.model)
        yield from losses(batch, target)

    trainer.method.training_losses = recording
    trainer.fit()
    rank = dist.get_rank() if dist.is_initialized() else 0
    assert held and all(model is trainer.model for model in held), "the method held a wrapper, not its network"
    torch.save(trainer.model.state_dict(), out / f"rank{rank}.pt")
    """
)


def test_ddp_two_ranks_agree_match_one_process_and_methods_hold_bare_networks(small_embedded, tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    root = str(Path(__file__).resolve().parents[1])
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
    }
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
         str(script), str(small_embedded), str(tmp_path / "ddp"), "3", "1"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = subprocess.run(
        [sys.executable, str(script), str(small_embedded), str(tmp_path / "single"), "3", "2"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr[-3000:]
    load = lambda p: torch.load(p, map_location="cpu", weights_only=True)  # noqa: E731
    rank0, rank1 = load(tmp_path / "ddp" / "rank0.pt"), load(tmp_path / "ddp" / "rank1.pt")
    reference = load(tmp_path / "single" / "rank0.pt")
    initial = Trainer(
        TrainRequest(
            method="unet",
            profile="tiny",
            data=small_embedded,
            out=tmp_path / "init",
            device="cpu",
            steps=1,
            size=(64, 64),
        )
    ).model.state_dict()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key

    # DDP and one process differ only by floating-point summation order. Adam turns that into visible
    # differences for the few weights whose gradients are ~0 (their update is noise over noise), so
    # compare the whole update: the gap must be a small fraction of what training changed.
    def norm(tensors):
        return torch.sqrt(sum(t.double().pow(2).sum() for t in tensors)).item()

    update = norm(reference[k] - initial[k] for k in reference)
    gap = norm(rank0[k] - reference[k] for k in reference)
    assert update > 0, "training did not change the weights"
    assert gap < 0.02 * update, (gap, update)


def test_the_readme_torchrun_line_trains_like_one_process_on_the_same_global_batch(small_embedded, tmp_path):
    """The README's DDP command, run as written (torchrun takes ``-m benchmark``; each rank reading through a
    DataLoader worker, validating its share), then compared with one process on the same global batch."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    line = re.search(r"`(torchrun --nproc_per_node 2 -m benchmark train unet --profile tiny)`", readme)
    assert line, "README.md no longer shows the torchrun command this test runs"
    torchrun = Path(sys.executable).parent / "torchrun"
    command = line.group(1).split()
    common = ["--data", str(small_embedded), "--device", "cpu", "--size", "64", "64", "--steps", "3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run(
        [str(torchrun), "--master_port", "29519", *command[1:], *common, "--batch-size", "1", "--workers", "1",
         "--out", str(tmp_path / "ddp")],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = subprocess.run(
        [sys.executable, "-m", "benchmark", "train", "unet", *common, "--batch-size", "2", "--out",
         str(tmp_path / "single")],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr[-3000:]
    trained = [load_checkpoint(tmp_path / run / "last.pt", "unet")["model"] for run in ("ddp", "single")]
    initial = Trainer(
        TrainRequest(method="unet", profile="tiny", data=small_embedded, out=tmp_path / "init", device="cpu",
                     steps=1, size=(64, 64))
    ).model.state_dict()  # fmt: skip
    update = torch.sqrt(sum((trained[1][k] - initial[k]).double().pow(2).sum() for k in initial)).item()
    gap = torch.sqrt(sum((trained[0][k] - trained[1][k]).double().pow(2).sum() for k in initial)).item()
    assert update > 0 and gap < 0.02 * update, (gap, update)


def test_magnitude_loss_is_l1_plus_l2_for_a_constant_offset():
    from benchmark.losses import magnitude_loss

    target = torch.rand(2, 8, 8)
    for offset in (0.5, -0.25, 2.0):
        expected = abs(offset) + offset**2  # mean |c| + mean c^2 for a constant error c
        assert magnitude_loss(target + offset, target).item() == pytest.approx(expected, rel=1e-5)


def test_every_shipped_checkpoint_was_trained_with_the_current_recipe_or_predates_the_protocol():
    # The manifest's command must reproduce the shipped weights: a changed training config needs a reship. A
    # checkpoint shipped under the training protocol records what it saw (``training``) and was made by the
    # current recipe; one from before the protocol (issue 31 retrains it) reproduces at its manifest commit and
    # breaks the protocol, so it cannot pass for a protocol model.
    import json
    from dataclasses import asdict

    from benchmark.checkpoint import CHECKPOINT_ROOT
    from benchmark.recipes import TrainConfig, protocol_breaches
    from benchmark.registry import get_training_class

    manifest = json.loads((CHECKPOINT_ROOT / "manifest.json").read_text())
    assert manifest, "no shipped checkpoints listed"
    for key, entry in manifest.items():
        *names, file = key.split("/")
        method, stage, profile = names[0], (names[1] if len(names) > 1 else None), file.removesuffix(".pt")
        cls = get_training_class(method, stage)
        payload = torch.load(CHECKPOINT_ROOT / key, map_location="cpu", weights_only=True)
        stored = plain_values(payload["train_config"])
        if "training" in entry:
            assert stored == plain_values(asdict(cls.train_configs[profile])), key
            # the run saw the protocol's slices; best.pt's weights saw those up to its own (best) step
            assert entry["training"]["training_slices"] == stored["steps"] * stored["batch_size"], key
            assert payload["training_slices"] == payload["step"] * stored["batch_size"] * payload["world"], key
            assert payload["step"] == entry["training"]["best_step"] <= entry["training"]["last_step"], key
            assert len(entry["git_commit"]) == 40, key
        else:
            known = {name: value for name, value in stored.items() if name in TrainConfig.__dataclass_fields__}
            old = TrainConfig(**known | {"betas": tuple(known["betas"]), "optimizers": ()})
            assert protocol_breaches(old, profile, cls.capacity_checked), key
            assert len(entry["git_commit"]) == 40, key


def test_gradient_accumulation_gives_the_weights_of_the_whole_batch(small_embedded, tmp_path):
    # The same 4 slices per step as one batch or as 2 x 2 micro-batches: the same AdamW steps up to rounding.
    states = []
    for parts in (1, 2):
        request = request_for(small_embedded, tmp_path / f"accumulate{parts}", steps=3, batch_size=2, accumulate=parts)
        Trainer(request).fit()
        states.append(torch.load(request.out / "last.pt", map_location="cpu", weights_only=True)["model"])
    for name, value in states[0].items():
        torch.testing.assert_close(states[1][name], value, rtol=1e-4, atol=1e-6, msg=name)
    assert any(not torch.equal(states[1][name], value) for name, value in states[0].items())  # really split
    with pytest.raises(InputError, match="must divide the batch size 2"):
        Trainer(request_for(small_embedded, tmp_path / "odd", steps=1, batch_size=2, accumulate=3))


def test_weights_digest_covers_zero_dimensional_tensors():
    """A 0-d buffer (MDPG's measured latent scale) is hashed as its 4 little-endian float bytes, like any tensor."""
    import hashlib
    import struct

    from benchmark.checkpoint import weights_digest

    payload = {"model": {"scale": torch.tensor(0.25)}}
    expected = hashlib.sha256(b"model.scale" + struct.pack("<f", 0.25)).hexdigest()
    assert weights_digest(payload) == expected
    assert weights_digest({"model": {"scale": torch.tensor(0.5)}}) != expected


def test_train_names_best_pt_only_once_it_exists(small_embedded, tmp_path):
    common = ["--data", str(small_embedded), "--device", "cpu", "--size", "64", "64", "--steps", "2"]
    common += ["--batch-size", "1", "--out", str(tmp_path / "run")]
    command = [sys.executable, "-m", "benchmark", "train", "unet", *common]
    stopped = subprocess.run([*command, "--stop-after", "1"], capture_output=True, text=True)
    assert stopped.returncode == 0, stopped.stderr[-2000:]
    assert not (tmp_path / "run" / "best.pt").exists() and "best checkpoint:" not in stopped.stdout
    assert "no best checkpoint yet" in stopped.stdout
    finished = subprocess.run([*command, "--resume"], capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert f"best checkpoint: {tmp_path / 'run' / 'best.pt'}" in finished.stdout
    assert (tmp_path / "run" / "best.pt").is_file()


def test_a_parent_checkpoint_is_recorded_by_its_place_under_the_checkpoint_root_and_its_digest(tmp_path):
    import hashlib

    shipped = CHECKPOINT_ROOT / "unet" / "tiny.pt"
    digest = hashlib.sha256(shipped.read_bytes()).hexdigest()
    assert checkpoint_reference(shipped) == {"path": "unet/tiny.pt", "sha256": digest}  # the same on every machine
    elsewhere = tmp_path / "best.pt"
    elsewhere.write_bytes(shipped.read_bytes())
    assert checkpoint_reference(elsewhere) == {"path": str(elsewhere), "sha256": digest}


def test_dataloader_workers_read_exactly_the_batches_the_training_process_would(small_embedded, tmp_path):
    """Two worker processes reading ahead (from a resumed step too) train to the same bits as none."""
    common = dict(method="unet", profile="tiny", data=small_embedded, device="cpu", steps=4, size=(64, 64))
    weights = []
    for workers in (0, 2):
        Trainer(TrainRequest(out=tmp_path / f"w{workers}", stop_after=2, workers=workers, **common)).fit()
        resumed = Trainer(TrainRequest(out=tmp_path / f"w{workers}", resume=True, workers=workers, **common))
        resumed.fit()
        weights.append(resumed.model.state_dict())
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])


def test_the_step_batches_walk_each_epochs_slice_order_in_turn(small_embedded):
    """Step s reads batch s mod (batches per epoch) of epoch s div it: the epochs' orders concatenated."""
    dataset = SliceDataset(dataset_files(small_embedded, "train"), LoadOptions(size=(64, 64)))
    config = TrainConfig(steps=10, batch_size=1, lr=1e-3)
    batches = StepBatches(dataset, config, ("radial",), (64, 64), hierarchy=False, rank=0, world=1)
    walked = [indices for epoch in range(4) for indices in epoch_batches(dataset, config, epoch, 0, 1)]
    assert [batches.indices(step) for step in range(10)] == walked[:10]


@pytest.mark.parametrize("world", [1, 2, 3])
def test_the_ranks_validate_every_image_once(world):
    patterns = ("cartesian_x", "radial")
    shares = [validation_units(patterns, 5, rank, world) for rank in range(world)]
    every = [unit for share in shares for unit in share]
    assert sorted(every) == sorted((pattern, index) for pattern in patterns for index in range(5))
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_reading_batches_leaves_the_global_random_stream_alone(small_embedded):
    """Methods sample from the global RNG while training (distillation's on-policy draws); a loader that drew
    from it would shift their stream on every resume, and retraining would no longer reproduce a checkpoint."""
    dataset = SliceDataset(dataset_files(small_embedded, "train"), LoadOptions(size=(64, 64)))
    batches = StepBatches(dataset, TrainConfig(steps=2, batch_size=1), ("radial",), (64, 64), False, 0, 1)
    torch.manual_seed(0)
    expected = torch.rand(4)
    torch.manual_seed(0)
    assert len(list(training_loader(batches, 0, workers=0))) == 2
    assert torch.equal(torch.rand(4), expected)
