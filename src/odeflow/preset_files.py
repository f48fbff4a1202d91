"""The shipped config presets (package data in odeflow/presets/*.toml, also reachable as the
repository's configs/ folder): `--config NAME` takes a preset name or a file path."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Dict, List, Optional, Union

PRESETS = "presets"


def presets_folder() -> Path:
    """The installed presets folder (inside the odeflow package)."""
    return Path(str(resources.files("odeflow") / PRESETS))


def preset_names() -> List[str]:
    return sorted(p.stem for p in presets_folder().glob("*.toml"))


def preset_path(name: str) -> Optional[Path]:
    """The preset file called ``name`` (with or without .toml), or None."""
    stem = name[:-5] if name.endswith(".toml") else name
    path = presets_folder() / f"{stem}.toml"
    return path if path.is_file() else None


def resolve_config(value: Union[str, Path]) -> Path:
    """A config file named on the command line: an existing file as given; else a preset, by name
    (`cnf_fast`) or by its repository path (`configs/cnf_fast.toml`, so README commands work from
    any folder after installing the wheel); else FileNotFoundError listing the presets."""
    path = Path(value)
    if path.is_file():
        return path
    if path.is_dir():
        raise ValueError(
            f"config {path} is a folder; give a .toml/.json file or a preset name ({', '.join(preset_names())})"
        )
    if path.suffix in ("", ".toml") and (len(path.parts) == 1 or path.parent.name == "configs"):
        found = preset_path(path.name)
        if found is not None:
            return found
    raise FileNotFoundError(
        f"config file {path} does not exist and is not a preset; give a file path or one of the presets: "
        f"{', '.join(preset_names())} (`odeflow presets` describes them)"
    )


def summary_line(path: Path, width: int = 110) -> str:
    """The first sentence of a preset's leading comment, cut at a word to ``width`` characters."""
    lines: List[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    text = " ".join(lines)
    for end in (". ", ": "):
        if end in text:
            text = text.split(end, 1)[0]
            break
    if len(text) > width:
        text = text[: width - 3].rsplit(" ", 1)[0] + "..."
    return text


def describe_presets() -> Dict[str, str]:
    return {name: summary_line(presets_folder() / f"{name}.toml") for name in preset_names()}
