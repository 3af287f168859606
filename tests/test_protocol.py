"""The one training protocol (issue 31): every tiny recipe sees the same training slices and validates on the
whole validation set, ``train`` refuses a recipe or a shipped run that breaks it, a latent method's
autoencoder is checked against the capacity floor before a stage builds on it, and the shipped checkpoint
carries its whole validation curve."""

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import torch

from benchmark.checkpoint import load_checkpoint
from benchmark.errors import InputError
from benchmark.masks import PATTERN_NAMES
from benchmark.method import LearnedMethod, Method, ReconBatch, TrainingStage, TrainingTarget
from benchmark.recipes import TINY_PROTOCOL, TrainConfig, protocol_breaches
from benchmark.registry import get_training_class
from benchmark.training.loop import Trainer, TrainRequest
from benchmark.training.plan import training_units


@dataclass(frozen=True)
class KeepConfig:
    pass


class Keep(LearnedMethod):
    """An 'autoencoder' of the fully sampled image (its validation image) that keeps ``weight`` of it and
    fills the rest with the image's mean: weight 1 reconstructs it exactly, weight 0 keeps nothing but its
    mean — independent truth for the capacity check."""

    name = "keep-autoencoder"
    stage = "autoencoder"
    configs = {"tiny": KeepConfig()}
    train_configs = {"tiny": TINY_PROTOCOL.recipe(2, lr=0.0, weight_decay=0.0)}
    capacity_checked = True

    def build_model(self) -> torch.nn.Module:
        module = torch.nn.Module()
        module.weight = torch.nn.Parameter(torch.ones(()))
        return module

    def reconstruct(self, batch: ReconBatch) -> torch.Tensor:
        return batch.operator().adjoint(batch.kspace)

    def validation_image(self, batch: ReconBatch, target: TrainingTarget) -> torch.Tensor:
        image = target.magnitude
        return self.model.weight * image + (1 - self.model.weight) * image.mean()

    def training_losses(self, batch, target):
        yield "model", self.model.weight * 0


class BuiltOnKeep(Keep):
    name = "built-on-keep"
    stage = "next"
    capacity_checked = False
    parent_stages = {"autoencoder": Keep}

    def build_model(self) -> torch.nn.Module:
        return self.parents["autoencoder"].model if self.parents else super().build_model()


def request(data, out, **overrides) -> TrainRequest:
    settings = dict(method="unet", profile="tiny", data=data, out=out, device="cpu", steps=2, size=(64, 64))
    return TrainRequest(**settings | overrides)


@pytest.mark.parametrize(("method", "stage"), training_units(), ids=lambda v: str(v))
def test_every_tiny_recipe_sees_the_protocols_slices_and_validates_on_every_val_slice(method, stage):
    cls = get_training_class(method, stage)
    recipe = cls.train_configs["tiny"]
    assert protocol_breaches(recipe, "tiny", may_exceed=cls.capacity_checked) == []
    assert recipe.val_slices is None
    if not cls.capacity_checked:
        assert recipe.steps * recipe.batch_size == 3240  # 30 passes over the 108-slice train split


@pytest.mark.parametrize(("method", "stage"), training_units(), ids=lambda v: str(v))
def test_every_declared_parent_is_a_stage_train_builds_of_the_same_method(method, stage):
    """A chain declared as data must be one ``train`` can build: each parent is a registered stage of the method."""
    for parent in get_training_class(method, stage).parent_stages.values():
        assert get_training_class(method, parent.stage) is parent


def test_a_stage_that_cannot_reconstruct_is_a_training_recipe_not_a_method():
    """NASP's privileged teacher needs the fully sampled image: the runner must have nothing to call on it,
    while the loop trains it like any stage and its student stages stay methods."""
    teacher = get_training_class("nasp", "teacher")
    assert issubclass(teacher, TrainingStage) and not issubclass(teacher, Method)
    assert not hasattr(teacher, "reconstruct")
    for stage in ("transformer", "distill"):
        assert issubclass(get_training_class("nasp", stage), Method)


def test_protocol_breaches_name_too_few_or_too_many_slices_and_a_partial_validation_set():
    recipe = TINY_PROTOCOL.recipe(4)
    assert recipe.steps == 810 and recipe.val_every == 135
    assert protocol_breaches(replace(recipe, steps=809), "tiny") == [
        "it sees 3236 training slices, the tiny protocol 3240"
    ]
    assert protocol_breaches(replace(recipe, steps=811), "tiny") != []
    assert protocol_breaches(replace(recipe, steps=811), "tiny", may_exceed=True) == []
    assert "every val slice" in protocol_breaches(replace(recipe, val_slices=3), "tiny")[0]
    assert protocol_breaches(TrainConfig(steps=1), "paper") == []  # the paper's budget is set on the command line


def test_a_capacity_budget_lengthens_a_recipe_but_never_shortens_it():
    longer = TINY_PROTOCOL.recipe(2, capacity_slices=7560)
    assert (longer.steps, longer.val_every) == (3780, 630)
    assert protocol_breaches(longer, "tiny") != [] and protocol_breaches(longer, "tiny", may_exceed=True) == []
    assert TINY_PROTOCOL.recipe(2, capacity_slices=100).steps * 2 == TINY_PROTOCOL.training_slices


def test_train_refuses_a_tiny_recipe_that_breaks_the_protocol(small_embedded, tmp_path, monkeypatch):
    unet = get_training_class("unet")
    monkeypatch.setattr(unet, "train_configs", {"tiny": TrainConfig(steps=300, batch_size=2)})
    with pytest.raises(InputError, match="breaks the training protocol: it sees 600 training slices"):
        Trainer(request(small_embedded, tmp_path / "run"))


def test_ship_refuses_a_run_shorter_than_the_protocol_before_it_trains(small_embedded, tmp_path):
    with pytest.raises(InputError, match="--ship needs the tiny protocol's 3240 training slices; this run sees 8"):
        Trainer(request(small_embedded, tmp_path / "run", ship=True, batch_size=4))


def test_best_checkpoint_carries_the_whole_curve_with_val_psnr_slices_and_time(small_embedded, tmp_path):
    trainer = Trainer(request(small_embedded, tmp_path / "run", steps=4))
    trainer.config = replace(trainer.config, val_every=1, log_every=1)
    scored = []
    image = trainer.method.validation_image
    trainer.method.validation_image = lambda batch, target: scored.append(batch.pattern) or image(batch, target)
    trainer.fit()
    # every val slice x each of the four patterns, at each of the four validations
    assert len(scored) == 4 * 4 * len(trainer.val_set) and set(scored) == set(PATTERN_NAMES)
    best = load_checkpoint(tmp_path / "run" / "best.pt", "unet")
    validations = [row for row in best["log"] if "val_ssim" in row]
    assert [row["step"] for row in validations] == [1, 2, 3, 4]  # steps after the best one included
    assert all(0 < row["val_ssim"] <= 1 and row["val_psnr"] > 0 for row in validations)
    assert best["last_step"] == 4 and best["wall_seconds"] > 0
    batch = trainer.config.batch_size
    assert best["run_training_slices"] == 4 * batch and best["training_slices"] == best["step"] * batch
    best_row = max(validations, key=lambda row: row["val_ssim"])
    assert best["step"] == best_row["step"] and best["best_val_ssim"] == best_row["val_ssim"]


@pytest.mark.parametrize(("weight", "passed"), [(1.0, True), (0.0, False)])
def test_capacity_check_passes_an_identity_autoencoder_and_fails_one_that_keeps_nothing(
    small_embedded, tmp_path, monkeypatch, weight, passed
):
    out = tmp_path / "ae"
    trainer = Trainer(request(small_embedded, out, method="keep-autoencoder", steps=1), training_class=Keep)
    with torch.no_grad():
        trainer.model.weight.fill_(weight)
    trainer.fit()
    check = load_checkpoint(out / "best.pt", "keep-autoencoder")["capacity"]
    assert check["passed"] is passed and check["floor_db"] == 26.0
    # identity: no error at all; a flat image at the mean, each image divided by its maximum: a few dB
    assert check["val_psnr"] == float("inf") if passed else check["val_psnr"] < 10

    monkeypatch.setattr(Keep, "shipped_checkpoint", classmethod(lambda cls, profile: out / "best.pt"))
    later = request(small_embedded, tmp_path / "next", method="built-on-keep", steps=1)
    if passed:
        gate = Trainer(later, training_class=BuiltOnKeep).capacity_gate
        assert gate == {"parents": {"autoencoder": check}, "below_capacity": False}
        return
    with pytest.raises(InputError, match="has not passed its capacity check .* < 26 dB.*--below-capacity"):
        Trainer(later, training_class=BuiltOnKeep)
    forced = Trainer(replace(later, below_capacity=True), training_class=BuiltOnKeep)
    assert forced.capacity_gate["below_capacity"] is True


def test_best_checkpoint_keeps_the_steps_after_its_best_and_names_its_step(small_embedded, tmp_path):
    trainer = Trainer(request(small_embedded, tmp_path / "run", steps=4))
    trainer.config = replace(trainer.config, val_every=1)
    ssim = iter([0.5, 0.9, 0.7, 0.6])
    trainer.validate = lambda: {"val_ssim": next(ssim), "val_psnr": 20.0}
    trainer.fit()
    best = load_checkpoint(tmp_path / "run" / "best.pt", "unet")
    assert best["step"] == 2 and best["best_val_ssim"] == 0.9 and best["last_step"] == 4
    assert [row["val_ssim"] for row in best["log"] if "val_ssim" in row] == [0.5, 0.9, 0.7, 0.6]


def test_var_weight_decay_rule_exempts_biases_1d_parameters_and_named_embeddings_only():
    from benchmark.training.optim import parameter_groups
    from methods.nasp.config import VAR_NO_DECAY

    module = torch.nn.Module()
    module.linear = torch.nn.Linear(3, 4)  # weight 2-D: decayed; bias: exempt
    module.norm = torch.nn.LayerNorm(4)  # 1-D weight and bias: exempt
    module.pos_1LC = torch.nn.Parameter(torch.zeros(1, 5, 4))  # named: exempt
    module.lvl_embed = torch.nn.Embedding(6, 4)  # named (its 2-D weight): exempt
    module.scale_mul_1H11 = torch.nn.Parameter(torch.zeros(1, 2, 1, 1))  # named: exempt
    decayed, exempt = parameter_groups(module, 0.05, VAR_NO_DECAY)
    assert decayed["weight_decay"] == 0.05 and exempt["weight_decay"] == 0.0
    assert [p.shape for p in decayed["params"]] == [torch.Size([4, 3])]
    assert len(exempt["params"]) == 6
    (everything,) = parameter_groups(module, 0.05, None)
    assert len(everything["params"]) == 7 and everything["weight_decay"] == 0.05


def test_training_report_tables_each_shipped_curve_and_says_when_the_best_step_is_the_last(tmp_path):
    import json

    from benchmark.reports.training import NO_CURVE, write_training_report

    def curve(ssims):
        return [{"step": 10 * (i + 1), "val_ssim": v, "val_psnr": 20 + v} for i, v in enumerate(ssims)]

    checkpoints = {
        "a/tiny.pt": {"log": curve([0.5, 0.8, 0.7]), "step": 20, "last_step": 30, "training_slices": 2160,
                      "wall_seconds": 3600.0, "capacity": None},
        "b/autoencoder/tiny.pt": {"log": curve([0.4, 0.6]), "step": 20, "last_step": 20, "training_slices": 2160,
                                  "wall_seconds": 1800.0,
                                  "capacity": {"val_psnr": 21.5, "floor_db": 26.0, "passed": False}},
        "c/tiny.pt": {"step": 300},  # shipped before curves were kept
    }  # fmt: skip
    for key, payload in checkpoints.items():
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        torch.save(payload, tmp_path / key)
    recorded = {"a/tiny.pt": 3240, "b/autoencoder/tiny.pt": 2160}  # the run's slices, recorded when shipped
    manifest = {key: {"training": {"training_slices": recorded[key]}} if key in recorded else {} for key in checkpoints}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    written = write_training_report(tmp_path / "report", root=tmp_path)
    assert [path.name for path in written] == ["training.md", "training_curves.png"]
    rows = {line.split(" | ")[0].strip("| "): line for line in written[0].read_text().splitlines()}
    assert "| 20 / 30 | 0.800 | 20.80 | yes |" in rows["a/tiny"] and "| 1.00 |" in rows["a/tiny"]
    assert "| 2160 / 3240 |" in rows["a/tiny"]  # to the best step (checkpoint) / the whole run (manifest)
    assert "| 2160 / 2160 |" in rows["b/autoencoder/tiny"]
    assert (
        "| 20 / 20 | 0.600 | 20.60 | no: best at the last step | 21.50 dB vs 26: missed |" in rows["b/autoencoder/tiny"]
    )
    assert NO_CURVE in rows["c/tiny"]


def test_retrain_order_puts_every_chain_first_in_its_declared_order_and_skips_nothing_pre_protocol():
    from benchmark.registry import STAGES
    from benchmark.training.retrain import retrain_order

    order = retrain_order()
    assert sorted(order, key=str) == sorted(training_units(), key=str) and len(set(order)) == len(order)
    assert order[0] == ("nasp", "tokenizer")  # the tokenizer's capacity decides NASP: it goes first
    for method, stages in STAGES.items():
        assert [stage for name, stage in order if name == method] == list(stages)
    chained = [i for i, (name, _) in enumerate(order) if name in STAGES]
    assert max(chained) < min(i for i, (name, _) in enumerate(order) if name not in STAGES)


@pytest.mark.parametrize(("recorded", "recipe_steps", "skipped"), [(True, None, True), (False, None, False),
                                                                   (True, 539, False)])  # fmt: skip
def test_retrain_skips_only_a_checkpoint_shipped_under_the_protocol_by_the_current_recipe(
    tmp_path, monkeypatch, recorded, recipe_steps, skipped
):
    import json
    from dataclasses import asdict

    from benchmark.training import retrain

    unet = get_training_class("unet")
    path = tmp_path / "unet" / "tiny.pt"
    path.parent.mkdir()
    recipe = unet.train_configs["tiny"]
    torch.save({"train_config": asdict(replace(recipe, steps=recipe_steps or recipe.steps))}, path)
    entry = {"sha256": "x", "training": {"training_slices": 2160}} if recorded else {"sha256": "x"}
    (tmp_path / "manifest.json").write_text(json.dumps({"unet/tiny.pt": entry}))
    monkeypatch.setattr(retrain, "MANIFEST", tmp_path / "manifest.json")
    monkeypatch.setattr(unet, "shipped_checkpoint", classmethod(lambda cls, profile: path))
    assert retrain.shipped_under_protocol("unet", None) is skipped


def test_retrain_stops_only_the_chain_whose_stage_is_refused_and_exits_nonzero(monkeypatch, capsys):
    from benchmark.errors import InputError
    from benchmark.training import retrain

    order = [("mdpg", "autoencoder"), ("mdpg", "prior"), ("mdpg", "unrolled"), ("unet", None)]
    trained = []

    def fake_train(request):
        if request.stage == "prior":
            raise InputError("mdpg prior builds on autoencoder, which has not passed its capacity check")
        trained.append((request.method, request.stage))

    monkeypatch.setattr(retrain, "retrain_order", lambda: order)
    monkeypatch.setattr(retrain, "shipped_under_protocol", lambda method, stage: False)
    monkeypatch.setattr(retrain, "train", fake_train)
    monkeypatch.setattr(retrain, "resolve_data", lambda requested: Path("data"))
    with pytest.raises(SystemExit) as stop:
        retrain.main([])
    assert stop.value.code == 2
    assert trained == [("mdpg", "autoencoder"), ("unet", None)]  # unrolled never trains on a refused prior
    captured = capsys.readouterr()
    assert "mdpg:prior: mdpg prior builds on autoencoder" in captured.err and "Traceback" not in captured.err
    assert "mdpg:unrolled: not trained, its chain stopped" in captured.out


def test_promote_ships_a_staged_chain_with_its_entries_and_refuses_a_changed_file(tmp_path):
    from benchmark.training.retrain import promote

    staged, root = tmp_path / "staged", tmp_path / "shipped"
    (staged / "nasp" / "tokenizer").mkdir(parents=True)
    (root / "unet").mkdir(parents=True)
    (staged / "nasp" / "tokenizer" / "tiny.pt").write_bytes(b"new tokenizer")
    (root / "unet" / "tiny.pt").write_bytes(b"unet")
    new = {"nasp/tokenizer/tiny.pt": {"sha256": hashlib.sha256(b"new tokenizer").hexdigest(), "command": "c"}}
    kept = {"unet/tiny.pt": {"sha256": hashlib.sha256(b"unet").hexdigest(), "command": "u"}}
    (staged / "manifest.json").write_text(json.dumps(new))
    (root / "manifest.json").write_text(json.dumps(kept))
    assert promote(staged, root) == ["nasp/tokenizer/tiny.pt"]
    assert (root / "nasp" / "tokenizer" / "tiny.pt").read_bytes() == b"new tokenizer"
    assert json.loads((root / "manifest.json").read_text()) == kept | new
    (staged / "nasp" / "tokenizer" / "tiny.pt").write_bytes(b"tampered")
    with pytest.raises(InputError, match="does not match its staged manifest entry"):
        promote(staged, root)
    assert (root / "nasp" / "tokenizer" / "tiny.pt").read_bytes() == b"new tokenizer"  # nothing moved
