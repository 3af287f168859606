"""Randomised minus realistic training, paired per subject on the same images (the numbers in README.md).

    python reports/domain-randomisation/paired.py

Reads the four runs README.md names (results/runs/domain-{realistic,randomised}-{test,shift}); per split, one Holm
family over methods x masks x PSNR/SSIM (paper scoring), two-sided Wilcoxon signed-rank on per-subject means over
the three contrasts, with the benchmark's own test and correction.
"""

import pandas as pd

from benchmark.reports.stats import holm, paired_wilcoxon, subject_means

RUNS = "results/runs/domain-{style}-{split}/metrics.csv"


def paired_rows(split: str) -> pd.DataFrame:
    frames = {style: pd.read_csv(RUNS.format(style=style, split=split)) for style in ("realistic", "randomised")}
    rows = []
    for method in ("unet", "e2evarnet"):
        for mask in sorted(frames["realistic"]["mask"].unique()):
            for metric in ("psnr_paper", "ssim_paper"):
                per_style = {
                    style: subject_means(frame[(frame["method"] == method) & (frame["mask"] == mask)], metric)[method]
                    for style, frame in frames.items()
                }
                paired = pd.concat(per_style, axis=1).dropna()
                difference = paired["randomised"] - paired["realistic"]
                rows.append({"split": split, "method": method, "mask": mask, "metric": metric,
                             "subjects": len(paired), "randomised_minus_realistic": difference.mean(),
                             "p": paired_wilcoxon(paired["randomised"], paired["realistic"])})  # fmt: skip
    table = pd.DataFrame(rows)
    table["p_holm"] = holm(table["p"].tolist())
    return table


if __name__ == "__main__":
    with pd.option_context("display.width", 200, "display.float_format", "{:.4g}".format):
        print(pd.concat([paired_rows("test"), paired_rows("shift")]).to_string(index=False))
