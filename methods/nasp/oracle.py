"""What the AQ-VAE tokenizer can express (issue: NASP part 1): ``python -m methods.nasp.oracle``.

For every test volume, mask pattern and contrast: the **oracle** (all six true levels, R = 32 … 2 and
FS, encoded, fused and decoded — it uses the fully sampled data, so it is a ceiling, never a method) and
the **R = 32-only** decoding (the tokens of the measured input alone, what the tokenizer gives without
the transformer), under the harness's per-volume measured normalisation, scored like a run: paper
protocol per image, fastMRI protocol per volume. Also codebook usage (% of codes used) and perplexity
of each level's tokens over the split. Writes ``oracle.csv`` and ``codebook.csv`` and prints the means.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from benchmark.acquisition import acquire
from benchmark.data import LoadOptions, dataset_files, verify_dataset
from benchmark.data.anatomy import CONTRASTS
from benchmark.masks import PATTERNS, make_mask_hierarchy, mask_seed
from benchmark.method import TrainingTarget
from benchmark.metrics import ScoringBatch
from benchmark.metrics.pixel import PSNR, SSIM
from benchmark.metrics.volume import fastmri_volume_scores
from benchmark.runner.units import load_volume
from methods.nasp.adapter import TokenizerStage
from methods.nasp.levels import LEVELS


def volume_recons(stage: TokenizerStage, volume: dict, file: Path, pattern: str, counts: list[torch.Tensor]):
    """Oracle and R = 32-only magnitudes ``(S, H, W)`` of one volume in the data's units."""
    shape = tuple(volume["kspace"].shape[-2:])
    # Seeded like the runner's masks (file name, slice position), so R = 32 is the run's mask.
    chains = [make_mask_hierarchy(pattern, shape, mask_seed(file.name, s)) for s in range(len(volume["target"]))]
    hierarchy = {r: torch.stack([chain[r] for chain in chains]) for r in chains[0]}
    acquisition = acquire(volume["kspace"], volume["maps"], hierarchy[32], pattern, 32, "volume")
    scale = float(acquisition.scale[0])
    full = acquisition.normalised(volume["kspace"])
    target = TrainingTarget(acquisition.normalised(volume["target"]), full, hierarchy)
    with torch.no_grad():
        oracle, quantized = stage.all_levels(acquisition.batch, target)
        r32 = stage.reconstruct(acquisition.batch)
    for level, indices in enumerate(quantized.indices):
        counts[level] += torch.bincount(indices.flatten(), minlength=stage.config.codebook_size)
    return {"oracle": oracle.abs() * scale, "r32_only": r32.abs() * scale}


def score(recon: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    batch = ScoringBatch(recon.float(), target.float(), target.amax().expand(target.shape[0]))
    paper = {"psnr_paper": PSNR("paper")(batch).mean().item(), "ssim_paper": SSIM("paper")(batch).mean().item()}
    return paper | fastmri_volume_scores(recon, target)


def codebook_table(counts: list[torch.Tensor]) -> pd.DataFrame:
    rows = []
    for level, count in enumerate(counts):
        probability = count.double() / count.sum()
        entropy = -(probability[probability > 0] * probability[probability > 0].log()).sum().item()
        label = "FS" if LEVELS[level] == 1 else f"R{LEVELS[level]}"
        rows.append({"level": label, "codes_used_pct": 100 * (count > 0).double().mean().item(),
                     "perplexity": math.exp(entropy), "tokens": int(count.sum())})  # fmt: skip
    return pd.DataFrame(rows)


def evaluate(data: Path, checkpoint: Path | None, profile: str, split: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    verify_dataset(data)
    stage = TokenizerStage(profile, torch.device("cpu"), checkpoint)
    stage.train_mode(False)
    counts = [torch.zeros(stage.config.codebook_size, dtype=torch.long) for _ in LEVELS]
    rows = []
    files = [(contrast, file) for contrast in CONTRASTS for file in dataset_files(data, split, (contrast,))]
    for contrast, file in tqdm(files, desc="oracle"):
        volume = load_volume(file, LoadOptions(normalization="measured"))
        for pattern in PATTERNS:
            for variant, recon in volume_recons(stage, volume, file, pattern, counts).items():
                info = {"variant": variant, "mask": pattern, "contrast": contrast, "file": file.name}
                rows.append(info | score(recon, volume["target"]))
    return pd.DataFrame(rows), codebook_table(counts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m methods.nasp.oracle", description=__doc__.split("\n\n")[1])
    parser.add_argument("--data", default="data/embedded")
    parser.add_argument("--checkpoint", help="tokenizer checkpoint (default: the shipped one)")
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", help="output folder (default: results/nasp/oracle-PROFILE, the committed one)")
    args = parser.parse_args(argv)
    scores, codebook = evaluate(Path(args.data), args.checkpoint and Path(args.checkpoint), args.profile, args.split)
    out = Path(args.out or f"results/nasp/oracle-{args.profile}")
    out.mkdir(parents=True, exist_ok=True)
    scores.to_csv(out / "oracle.csv", index=False)
    codebook.to_csv(out / "codebook.csv", index=False)
    metrics = ["psnr_paper", "ssim_paper", "psnr_fastmri", "ssim_fastmri"]
    print(scores.groupby(["variant", "mask", "contrast"])[metrics].mean().round(3).to_string())
    print(codebook.round(2).to_string(index=False))


if __name__ == "__main__":
    main()
