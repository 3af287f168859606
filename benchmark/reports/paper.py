"""The paper's published numbers (``results/paper/paper_tables.csv``), kept apart from any run's."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from benchmark.shipped import PAPER_TABLES, shipped_root

#: The paper's methods, in its table order, under this suite's registry names.
PAPER_METHODS = ("unet", "swinunet", "e2evarnet", "recurrentvarnet", "diffuserecon", "mdpg", "mambarecon", "nasp")
TABLE_IDS = {
    "Table 1": "table1",
    "Table 2": "table2",
    "Table 3": "table3",
    "Supp. Table 1": "supp_table1",
    "Supp. Table 2": "supp_table2",
}
PAPER_CSV = shipped_root() / PAPER_TABLES


@lru_cache(maxsize=1)
def load_paper_tables(path: Path = PAPER_CSV) -> pd.DataFrame:
    """All published numbers; ``value`` is kept as the printed string (``0.60`` stays ``0.60``)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def paper_values(table: str, masks: str | list[str], metrics: list[str], by_contrast: bool) -> pd.DataFrame:
    """Published values laid out like our table's columns (``metric|contrast`` or ``mask|metric``)."""
    data = load_paper_tables()
    data = data[data["table"] == TABLE_IDS[table]]
    cells: dict[str, dict[str, str]] = {}
    for row in data.itertuples():
        if by_contrast:
            column = f"{row.metric}|{row.contrast}"
        else:
            column = f"{row.mask}|{row.metric}"
        cells.setdefault(column, {})[row.method] = row.value
    frame = pd.DataFrame(cells).reindex(index=list(PAPER_METHODS))
    return frame.fillna("—")
