"""Names of the classification sets sktime bundles (plain data, no torch: the command line checks
`--data` without importing the loaders).

Each bundled set has a short name and its sktime folder name; `--data uea:NAME` takes the folder
name (any case) or the short name. Sizes are the official splits (train / test cases).
"""

from __future__ import annotations

from typing import Dict, Optional

# short name -> (sktime folder, sktime loader function)
BUNDLED: Dict[str, tuple] = {
    "arrow-head": ("ArrowHead", "load_arrow_head"),  # 1 channel, length 251, 3 classes, 36 / 175
    "gunpoint": ("GunPoint", "load_gunpoint"),  # 1, 150, 2 classes, 50 / 150
    "italy-power-demand": ("ItalyPowerDemand", "load_italy_power_demand"),  # 1, 24, 2, 67 / 1029
    "osuleaf": ("OSULeaf", "load_osuleaf"),  # 1, 427, 6, 200 / 242
    "acsf1": ("ACSF1", "load_acsf1"),  # 1, 1460, 10, 100 / 100
    "plaid": ("PLAID", "load_plaid"),  # 1, lengths 100-1344, 11, 537 / 537
    "basic-motions": ("BasicMotions", "load_basic_motions"),  # 6, 100, 4, 40 / 40
    "japanese-vowels": ("JapaneseVowels", "load_japanese_vowels"),  # 12, lengths 7-29, 9, 270 / 370
    "unit-test": ("UnitTest", "load_unit_test"),  # 1, 24, 2, 20 / 22 (a Chinatown subset)
}
PREFIX = "uea:"


def uea_short_name(data: str) -> Optional[str]:
    """The short name of a bundled set given as `NAME` (short) or `uea:NAME` (short or sktime
    folder name, any case); None when `data` names no bundled set."""
    if data in BUNDLED:
        return data
    if not data.lower().startswith(PREFIX):
        return None
    name = data[len(PREFIX) :].strip().lower()
    for short, (folder, _) in BUNDLED.items():
        if name in (short, folder.lower()):
            return short
    return None


def is_uea_name(data: str) -> bool:
    """`data` asks for a UEA/UCR set (`uea:...` or a bundled short name), known or not."""
    return data in BUNDLED or data.lower().startswith(PREFIX)


def valid_uea_names() -> str:
    return ", ".join(f"{s} (uea:{f})" for s, (f, _) in BUNDLED.items())
