"""Files that ship inside the installed package: the leaderboard script, the golden sets, the training configs.

Everything is found through importlib.resources, so the same call works from a wheel in site-packages, from
`pip install --target`, and from an editable install of the repository. The golden sets live at the top of
the repository (`golden_sets/`); `evalhub/golden_sets` is a link to that folder, so the wheel carries them
as `evalhub/golden_sets/*.jsonl` and an editable install reads the repository's files in place.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

CONFIG_SUFFIXES = (".yaml", ".yml")


def _path(package: str, *parts: str) -> Path:
    # An installed package is a folder on disk (wheels are unpacked), so its files are real paths that a
    # subprocess (Streamlit, lm-eval) can open.
    return Path(str(files(package).joinpath(*parts)))


def app_script() -> Path:
    """The Streamlit script of the leaderboard (what `evalhub app` and the root `app.py` run)."""
    return _path("evalhub.app", "main.py")


def golden_sets_dir() -> Path:
    """The folder of the shipped golden sets (JSONL) and their README."""
    return _path("evalhub", "golden_sets")


def golden_sets() -> dict[str, Path]:
    """Shipped golden sets by name (file name without .jsonl)."""
    return {path.stem: path for path in sorted(golden_sets_dir().glob("*.jsonl"))}


def training_configs_dir() -> Path:
    """The folder of the shipped training configs (`evalhub train --config NAME`)."""
    return _path("trainers", "configs")


def training_configs() -> dict[str, Path]:
    """Shipped training configs by name (file name without .yaml), e.g. toy_sft, toy_dpo, qlora_sft."""
    folder = training_configs_dir()
    return {path.stem: path for path in sorted(folder.iterdir()) if path.suffix in CONFIG_SUFFIXES}

