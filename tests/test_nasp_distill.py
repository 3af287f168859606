"""NASP part 3: the privileged teacher and on-policy reverse-KL distillation, against closed forms,
torch.distributions, the frozen teacher's parameters, the rollout the loss is taken on, the corruption
rate of the teacher's prefixes, and a bit-identical resume."""

from __future__ import annotations

import pytest
import torch

from methods.nasp.distill import reverse_kl, scale_averaged_reverse_kl
from methods.nasp.model import NASPModel
from methods.nasp.teacher import corrupt_prefix
from methods.nasp.tokenizer import AQVAE
from tests.test_nasp_transformer import TINY, TINY_TOKENIZER, random_tokens, tiny_model


def test_reverse_kl_equals_the_closed_form_of_small_categoricals():
    p = torch.tensor([[0.5, 0.3, 0.2], [0.9, 0.05, 0.05]], dtype=torch.float64)
    q = torch.tensor([[0.2, 0.2, 0.6], [1 / 3, 1 / 3, 1 / 3]], dtype=torch.float64)
    by_hand = [sum(pi * torch.log(pi / qi) for pi, qi in zip(p[r], q[r], strict=True)) for r in range(2)]
    # Row 0: 0.5 ln 2.5 + 0.3 ln 1.5 + 0.2 ln(1/3) = 0.36651...
    assert by_hand[0].item() == pytest.approx(
        0.5 * 0.916290731874155 + 0.3 * 0.405465108108164 - 0.2 * 1.09861228866811
    )
    value = reverse_kl(p.log(), q.log())
    assert torch.allclose(value.double(), torch.stack(by_hand), atol=1e-6)
    reference = torch.distributions.kl_divergence(
        torch.distributions.Categorical(p), torch.distributions.Categorical(q)
    )
    assert torch.allclose(value.double(), reference, atol=1e-6)
    # Reverse, not forward: swapping the arguments gives another number.
    assert not torch.allclose(reverse_kl(q.log(), p.log()), value, atol=1e-3)


def test_reverse_kl_is_zero_with_zero_gradient_when_student_equals_teacher():
    logits = torch.randn(2, 7, 11, dtype=torch.float64)
    student = logits.clone().requires_grad_(True)
    loss = scale_averaged_reverse_kl(student, logits, [(0, 2), (2, 5), (5, 7)])
    loss.backward()
    assert abs(loss.item()) < 1e-6
    assert student.grad.abs().max().item() < 1e-6


def test_eq4_averages_tokens_within_each_scale_then_the_scales():
    student, teacher = torch.randn(1, 6, 5), torch.randn(1, 6, 5)
    per_position = reverse_kl(student, teacher)[0]
    # Scale 0 (positions 0-1) is observed and excluded; scale 1 has one token, scale 2 three.
    expected = (per_position[2] + per_position[3:6].mean()) / 2
    value = scale_averaged_reverse_kl(student, teacher, [(0, 2), (2, 3), (3, 6)])
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)
    assert value.item() != pytest.approx(per_position[2:].mean().item(), rel=1e-3)


def test_the_teacher_sees_corrupted_prefixes_at_the_configured_rate_and_the_observed_scale_clean():
    vocab, rate = 512, 0.2
    clean = [
        torch.randint(vocab, (64, g * g), generator=torch.Generator().manual_seed(g)) for g in (11, 12, 13, 14, 15, 16)
    ]
    noisy = corrupt_prefix(clean, rate, vocab, torch.Generator().manual_seed(0))
    assert torch.equal(noisy[0], clean[0])  # Q_32 is observed: never corrupted
    changed = torch.cat([(n != c).flatten() for n, c in zip(noisy[1:], clean[1:], strict=True)]).double()
    # A replacement draws the same index with probability 1/vocab, so the changed share is rate (1 - 1/vocab).
    tokens = changed.numel()
    expected = rate * (1 - 1 / vocab)
    assert abs(changed.mean().item() - expected) < 4 * (expected * (1 - expected) / tokens) ** 0.5
    assert all(n.min() >= 0 and n.max() < vocab for n in noisy)
    assert corrupt_prefix(clean, 0.0, vocab)[3].equal(clean[3])


def test_the_privileged_teacher_starts_as_its_base_and_depends_on_x_only_through_its_new_branch():
    base = tiny_model(seed=5)
    teacher = NASPModel(AQVAE(TINY_TOKENIZER), TINY, privileged=True).eval()
    missing, unexpected = teacher.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and missing and all(".privileged." in key for key in missing)
    image, full, pattern = torch.randn(1, 3, 256, 256), torch.randn(1, 3, 256, 256), torch.tensor([2])
    indices = random_tokens(base, 1, seed=6)
    with torch.no_grad():
        assert torch.allclose(teacher(image, indices, pattern, full), base(image, indices, pattern), atol=1e-6)
        for block in teacher.transformer.blocks:  # once the branch is open, x changes the prediction
            torch.nn.init.normal_(block.privileged.proj.weight, std=0.5)
        assert not torch.allclose(teacher(image, indices, pattern, full), teacher(image, indices, pattern, -full))
    with pytest.raises(ValueError, match="privileged"):
        base(image, indices, pattern, full)  # the student can never be handed x
    with pytest.raises(ValueError, match="privileged"):
        teacher(image, indices, pattern)


STAGE_CLASSES = {
    "tokenizer": "methods.nasp.adapter:TokenizerStage",
    "transformer": "methods.nasp.adapter:TransformerStage",
    "teacher": "methods.nasp.teacher:TeacherStage",
}


def use_as_shipped(patch: pytest.MonkeyPatch, paths: dict) -> None:
    """Make each stage's ``shipped_checkpoint`` the given file (set on each class: stages inherit it)."""
    import importlib

    for stage, path in paths.items():
        module, name = STAGE_CLASSES[stage].split(":")
        cls = getattr(importlib.import_module(module), name)
        patch.setattr(cls, "shipped_checkpoint", classmethod(lambda c, profile, p=path: p))


@pytest.fixture(scope="module")
def nasp_chain(ci_embedded, tmp_path_factory):
    """Tokenizer -> base -> teacher checkpoints of one or two steps each on the CI data."""
    from benchmark.training.loop import Trainer, TrainRequest

    root = tmp_path_factory.mktemp("nasp-chain")
    # one-step tokenizers miss the capacity floor: the chain is for mechanics, not numbers
    common = dict(profile="tiny", data=ci_embedded, device="cpu", batch_size=2, masks=("cartesian_y",))
    common |= {"below_capacity": True}
    paths = {}
    with pytest.MonkeyPatch.context() as patch:
        for stage, steps in (("tokenizer", 1), ("transformer", 1), ("teacher", 2)):
            Trainer(TrainRequest(method="nasp", stage=stage, out=root / stage, steps=steps, **common)).fit()
            paths[stage] = root / stage / "best.pt"
            use_as_shipped(patch, paths)
    return paths, common


@pytest.fixture
def shipped_chain(nasp_chain, monkeypatch):
    use_as_shipped(monkeypatch, nasp_chain[0])
    return nasp_chain


def test_a_distillation_step_changes_the_student_only_and_records_the_chain(shipped_chain, tmp_path):
    from benchmark.io import sha256_file
    from benchmark.training.loop import Trainer, TrainRequest

    paths, common = shipped_chain
    trainer = Trainer(TrainRequest(method="nasp", stage="distill", out=tmp_path, steps=1, **common))
    teacher = trainer.method.teacher
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student_before = {k: v.clone() for k, v in trainer.model.transformer.state_dict().items()}
    trainer.fit()
    assert all(torch.equal(teacher_before[k], v) for k, v in teacher.state_dict().items())
    assert all(p.grad is None for p in teacher.parameters())
    assert not all(torch.equal(student_before[k], v) for k, v in trainer.model.transformer.state_dict().items())
    provenance = torch.load(tmp_path / "best.pt", weights_only=True)["provenance"]
    assert provenance["teacher"]["sha256"] == sha256_file(paths["teacher"])
    assert provenance["transformer"]["sha256"] == sha256_file(paths["transformer"])
    chain = provenance["teacher"]["provenance"]["transformer"]["provenance"]["tokenizer"]
    assert chain["sha256"] == sha256_file(paths["tokenizer"])  # tokenizer -> base -> teacher -> distilled


def test_the_loss_is_the_kl_on_the_students_own_rollout(shipped_chain, tmp_path, monkeypatch):
    import methods.nasp.distill as distill
    from benchmark.training.batches import make_batch, training_masks
    from benchmark.training.loop import Trainer, TrainRequest

    paths, common = shipped_chain
    trainer = Trainer(TrainRequest(method="nasp", stage="distill", out=tmp_path, steps=1, **common))
    method, model = trainer.method, trainer.model
    shape = tuple(trainer.train_set[0]["target"].shape)
    pattern, masks, chains = training_masks(trainer.config, 0, [0, 1], ("cartesian_y",), shape, True)
    batch, target = make_batch(trainer.train_set, [0, 1], masks, pattern, 32, chains)
    fixed = random_tokens(model, 2, seed=7)
    with torch.no_grad():  # confident heads and a teacher far from the student: a KL far from zero
        for block in method.teacher.transformer.blocks:
            torch.nn.init.normal_(block.privileged.proj.weight, std=0.5)
        method.teacher.transformer.head.weight.mul_(50), model.transformer.head.weight.mul_(50)
    seen = []
    monkeypatch.setattr(distill, "rollout", lambda student, image, pattern: seen.append(image) or fixed)
    ((name, loss),) = list(method.training_losses(batch, target))
    image, pattern_index = method._inputs(batch)
    full = distill.fully_sampled_image(batch, target)
    with torch.no_grad():
        p = torch.distributions.Categorical(logits=model(image, fixed, pattern_index))
        q = torch.distributions.Categorical(logits=method.teacher(image, fixed, pattern_index, full))
        per_position = torch.distributions.kl_divergence(p, q)
    ends = model.transformer.begin_ends
    expected = torch.stack([per_position[:, b:e].mean() for b, e in ends[1:]]).mean()
    assert name == "model" and len(seen) == 1
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert loss.requires_grad


def test_the_teacher_trains_on_corrupted_inputs_against_clean_labels(shipped_chain, monkeypatch):
    import torch.nn.functional as F

    import methods.nasp.teacher as teacher_module
    from benchmark.training.batches import make_batch, training_masks
    from benchmark.training.loop import Trainer, TrainRequest

    paths, common = shipped_chain
    trainer = Trainer(TrainRequest(method="nasp", stage="teacher", out=paths["teacher"].parent.parent / "t2", **common))
    method, model = trainer.method, trainer.model
    shape = tuple(trainer.train_set[0]["target"].shape)
    pattern, masks, chains = training_masks(trainer.config, 0, [0, 1], ("cartesian_y",), shape, True)
    batch, target = make_batch(trainer.train_set, [0, 1], masks, pattern, 32, chains)
    seen = {}

    def recording(indices, rate, vocab, generator=None):
        seen["clean"], seen["rate"] = indices, rate
        seen["noisy"] = corrupt_prefix(indices, rate, vocab, generator)
        return seen["noisy"]

    monkeypatch.setattr(teacher_module, "corrupt_prefix", recording)
    with torch.no_grad():
        model.transformer.head.weight.mul_(50)  # confident logits: clean and noisy labels score apart
    ((_, loss),) = list(method.training_losses(batch, target))
    assert seen["rate"] == 0.2  # the configured rate reaches the corruption
    changed = torch.cat([(n != c).flatten() for n, c in zip(seen["noisy"][1:], seen["clean"][1:], strict=True)])
    assert 0.1 < changed.double().mean().item() < 0.3
    image, pattern_index = method._inputs(batch)
    full = teacher_module.fully_sampled_image(batch, target)
    with torch.no_grad():
        logits = model(image, seen["noisy"], pattern_index, full)
    begin = model.transformer.begin_ends[1][0]
    labels = torch.cat(seen["clean"][1:], dim=1)
    expected = F.cross_entropy(logits[:, begin:].reshape(-1, logits.shape[-1]), labels.reshape(-1))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    noisy_labels = torch.cat(seen["noisy"][1:], dim=1)
    assert loss.item() != pytest.approx(
        F.cross_entropy(logits[:, begin:].reshape(-1, logits.shape[-1]), noisy_labels.reshape(-1)).item(), rel=1e-4
    )


def test_rollouts_sample_the_students_own_distribution():
    import methods.nasp.distill as distill

    model = tiny_model(seed=8).train()
    image, pattern = torch.randn(2, 3, 256, 256), torch.tensor([0, 1])
    torch.manual_seed(0)
    first = distill.rollout(model, image, pattern)
    second = distill.rollout(model, image, pattern)
    assert model.training  # the rollout runs in evaluation mode and puts the mode back
    assert torch.equal(first[0], second[0])  # Q_32 is the observed input's tokens
    assert not all(torch.equal(a, b) for a, b in zip(first[1:], second[1:], strict=True))  # sampled, not argmax


def test_distillation_resumes_bit_for_bit(shipped_chain, tmp_path):
    from benchmark.training.loop import Trainer, TrainRequest

    paths, common = shipped_chain
    straight = Trainer(TrainRequest(method="nasp", stage="distill", out=tmp_path / "a", steps=2, **common))
    straight.fit()
    first = TrainRequest(method="nasp", stage="distill", out=tmp_path / "b", steps=2, stop_after=1, **common)
    Trainer(first).fit()
    resumed = Trainer(TrainRequest(method="nasp", stage="distill", out=tmp_path / "b", steps=2, resume=True, **common))
    resumed.fit()
    for (key, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), key
