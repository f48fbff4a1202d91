"""The shipped config presets (package data in odeflow/presets/*.toml, also reachable as the
repository's configs/ folder): `--config NAME` takes a preset name or a file path."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Type, Union

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
            f"config {path} is a folder, not a file; give a .toml/.json file or a preset name ({', '.join(preset_names())})"
        )
    if path.suffix in ("", ".toml") and (len(path.parts) == 1 or path.parent.name == "configs"):
        found = preset_path(path.name)
        if found is not None:
            return found
    raise FileNotFoundError(
        f"config file {path} does not exist and is not a preset; give a file path or one of the presets: "
        f"{', '.join(preset_names())} (`odeflow presets` describes them)"
    )


def read_config(path: Union[str, Path]) -> Dict[str, Any]:
    """A TOML or JSON config file (a path, or a preset's name) as a dict; ValueError naming the file
    when it cannot be read or parsed (the exact bytes are parsed: TOML refuses a bare CR)."""
    path = resolve_config(path)
    errors: Tuple[Type[Exception], ...]
    if path.suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python < 3.11
            raise ValueError(f"config file {path}: TOML needs Python 3.11 or later; use a .json file") from None
        parse, errors = tomllib.loads, (tomllib.TOMLDecodeError,)
    else:
        parse, errors = json.loads, (json.JSONDecodeError,)
    try:
        data = parse(path.read_bytes().decode("utf-8-sig"))  # exact line ends: TOML refuses a bare CR
    except UnicodeDecodeError:
        raise ValueError(f"config file {path} is not UTF-8 text; save it as UTF-8") from None
    except errors as err:
        raise ValueError(f"config file {path} cannot be parsed: {err}") from None
    except RecursionError:
        raise ValueError(f"config file {path} cannot be parsed: nested too deeply") from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a table/object of config fields")
    return data


def summary_line(path: Path, width: int = 110) -> str:
    """The first sentence of a preset's leading comment, cut at a word to ``width`` characters."""
    lines: List[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    text = _first_sentence(" ".join(lines))
    if len(text) > width:
        text = text[: width - 3].rsplit(" ", 1)[0] + "..."
    return text


def _first_sentence(text: str) -> str:
    """Up to the first '. ' outside parentheses that does not end an abbreviation (et al., e.g.)."""
    depth = 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "." and depth <= 0 and text[i + 1 : i + 2] in (" ", ""):
            word = text[:i].rsplit(" ", 1)[-1]
            if word not in ("al", "e.g", "i.e", "vs", "cf"):
                return text[:i]
    return text


def task_of(path: Path) -> str:
    """The `odeflow train` task a preset is for: tabular presets have a [model] table, image presets
    name an image set (or the file starts with image_); the others are 2-D CNF recipes."""
    text = path.read_text(encoding="utf-8")
    try:
        import tomllib
    except ImportError:  # Python < 3.11: the table header is enough to tell
        return (
            "tabular"
            if "\n[model]" in text
            else ("image" if path.stem.startswith(("image_", "mnist", "cifar")) else "cnf")
        )
    values = tomllib.loads(text)
    if "model" in values:
        return "tabular"
    if path.stem.startswith("image_") or values.get("data") in ("mnist", "fashion-mnist", "cifar10"):
        return "image"
    return "cnf"


def describe_presets() -> Dict[str, Tuple[str, str]]:
    """name -> (task, one line) for every shipped preset."""
    folder = presets_folder()
    return {name: (task_of(folder / f"{name}.toml"), summary_line(folder / f"{name}.toml")) for name in preset_names()}
