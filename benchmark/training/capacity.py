"""What a stage checks of the earlier stages it builds on: the capacity gate (a stage built on a latent method's
autoencoder trains only on one that passed the protocol's capacity floor, unless asked to train below it,
recorded) and, on resume, that its parents are still the files it started on."""

from __future__ import annotations

from pathlib import Path

from benchmark.errors import BenchmarkError, InputError
from benchmark.method import TrainingStage


def capacity_gate(method: TrainingStage, profile: str, below_capacity: bool) -> dict | None:
    """The capacity checks of the earlier stages ``method`` builds on (``None`` if none is checked); an error if
    one missed the protocol's floor (or predates the check), unless ``below_capacity`` lets it train anyway."""
    checks = {name: parent.capacity for name, parent in method.parents.items() if parent.capacity_checked}
    if not checks:
        return None
    missed = [name for name, check in checks.items() if not (check or {}).get("passed")]
    if missed and not below_capacity:
        found = "; ".join(f"{name}: {_capacity_text(checks[name])}" for name in missed)
        raise InputError(f"{method.name} {method.stage} builds on {', '.join(missed)}, which has not passed its "
                         f"capacity check ({found}); retrain it, or pass --below-capacity to train on it anyway "
                         "(recorded in the checkpoint and the manifest)")  # fmt: skip
    return {"parents": checks, "below_capacity": bool(missed)}


def _capacity_text(check: dict | None) -> str:
    if check is None:
        return "its checkpoint predates the check"
    return f"{check['val_psnr']:.2f} dB < {check['floor_db']:.0f} dB"


def check_same_parents(path: Path, stored: dict, method: TrainingStage) -> None:
    """A run resumes only on the parent checkpoints it started on (their sha256 in ``last.pt``'s provenance)."""
    for role, reference in method.provenance().items():
        before = (stored.get(role) or {}).get("sha256") if role in method.parents else None
        if before and before != reference["sha256"]:
            raise BenchmarkError(f"{path} was trained on a {role} with sha256 {before[:12]}, but {reference['path']} "
                                 f"is now {reference['sha256'][:12]}; use another --out to start over")  # fmt: skip
