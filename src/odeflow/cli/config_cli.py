"""Every `odeflow train <task>` parser, generated from the task's config dataclass.

Each field becomes ``--field-name`` (underscores to dashes) with what its annotation says:

    int, float, str         type=int / float / (text)       Optional[X]: as X
    PositiveInt, ...        positive_int, positive_float, non_negative_float, fraction
    bool                    a switch (store_true)
    List[X], Tuple[X, ...]  nargs="+" of X
    Literal["a", "b"]       choices

and its help from the field's trailing comment (or ``field(metadata={"help": ...})``), with the
default appended; ``field(metadata={"cli": False})`` keeps a field to config files. The engine's options come from `TrainingConfig` the same way, once; a task's
CLI file passes only what is truly special (a renamed flag, a JSON value, an optional-argument
switch) as overrides. Unset options stay out of the namespace, so a config file or a resumed
run's settings are overridden only by what the command line gives.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import io
import re
import textwrap
import tokenize
import types
import typing
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Optional, Tuple

from ..training.config import TrainingConfig
from ..training.config_types import Check

Options = Dict[str, Tuple[str, Dict[str, Any]]]  # flag -> (config field, argparse keyword arguments)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    value = _number(text, "a positive number")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def non_negative_float(text: str) -> float:
    value = _number(text, "a number >= 0")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def fraction(text: str) -> float:
    value = _number(text, "a number in (0, 1]")
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {value}")
    return value


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


CHECKS: Dict[Tuple[type, str], Callable[[str], Any]] = {
    (int, "positive"): positive_int,
    (float, "positive"): positive_float,
    (float, "non-negative"): non_negative_float,
    (float, "fraction"): fraction,
}
_TYPE_IGNORE = re.compile(r"^type:\s*ignore(\[[^\]]*\])?\s*(#\s*)?")  # a checker's note is not help
ENGINE_SKIP = frozenset({"schedule"})  # a task that has stages adds --schedule itself


def flag_of(name: str) -> str:
    return "--" + name.replace("_", "-")


@functools.cache
def field_comments(cls: type) -> Dict[str, str]:
    """Trailing ``# comment`` of each field in the class body (and its bases)."""
    out: Dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        comments: Dict[int, str] = {}
        alone = set()  # lines holding nothing but a comment
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                comments[tok.start[0]] = _TYPE_IGNORE.sub("", tok.string.lstrip("#").strip())
                if tok.line.strip().startswith("#"):
                    alone.add(tok.start[0])
        body = ast.parse(_dedent(source)).body[0]
        for node in getattr(body, "body", []):
            if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
                continue
            last = node.end_lineno or node.lineno
            lines = [n for n in range(node.lineno, last + 1) if n in comments]
            if lines:
                out[node.target.id] = _continued(" ".join(comments[n] for n in lines), last, comments, alone)
    return out


def _continued(text: str, line: int, comments: Dict[int, str], alone: set) -> str:
    """A field's comment with the comment-only lines that carry on its unfinished sentence (an
    open parenthesis, or a trailing comma, semicolon or colon); a section comment stays apart."""
    while line + 1 in alone:
        nxt = comments[line + 1]
        unfinished = text.count("(") > text.count(")") or text.endswith((",", ";", ":", "("))
        if not nxt or not unfinished:
            break
        text, line = f"{text} {nxt}", line + 1
    return text


def _dedent(source: str) -> str:
    return textwrap.dedent(source)


def argparse_kwargs(annotation: Any) -> Dict[str, Any]:
    """type / nargs / choices / action of an option from a field's annotation."""
    check: Optional[str] = None
    if typing.get_origin(annotation) is typing.Annotated:
        annotation, *extras = typing.get_args(annotation)
        check = next((e.kind for e in extras if isinstance(e, Check)), None)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union or _is_union_type(annotation):
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            raise TypeError(f"cannot build an option for {annotation!r}: give it as an override")
        return argparse_kwargs(rest[0])
    if origin in (list, tuple):
        inner = argparse_kwargs(args[0])
        return dict(inner, nargs="+")
    if origin is typing.Literal:
        return dict(choices=list(args))
    if annotation is bool:
        return dict(action="store_true")
    if check is not None:
        return dict(type=CHECKS[(annotation, check)])
    if annotation in (int, float):
        return dict(type=annotation)
    if annotation is str:
        return dict()
    raise TypeError(f"cannot build an option for {annotation!r}: give it as an override")


def _is_union_type(annotation: Any) -> bool:
    return isinstance(annotation, getattr(types, "UnionType", ()))


def options_of(
    cls: type, overrides: Optional[Options] = None, skip: Iterable[str] = (), engine: bool = True
) -> Options:
    """The options of config dataclass ``cls``: the engine's (unless ``engine`` is False), then the
    task's fields, a field given in ``overrides`` (by its flag) taken from there."""
    overrides = dict(overrides or {})
    by_field = {name: flag for flag, (name, _) in overrides.items()}
    hints = typing.get_type_hints(cls, include_extras=True)
    comments = field_comments(cls)
    engine_fields = {f.name for f in dataclasses.fields(TrainingConfig)}
    skip = set(skip) | (ENGINE_SKIP - set(by_field))
    out: Options = {}
    for f in dataclasses.fields(cls):
        if f.name in skip or f.metadata.get("cli") is False:
            continue
        if not engine and f.name in engine_fields and f.name not in by_field:
            continue
        if f.name in by_field:
            flag = by_field[f.name]
            out[flag] = overrides.pop(flag)
            continue
        kwargs = argparse_kwargs(hints[f.name])
        help_text = f.metadata.get("help") or comments.get(f.name, "")
        if help_text:
            kwargs["help"] = help_text.replace("%", "%%")  # argparse formats help with %
        out[flag_of(f.name)] = (f.name, kwargs)
    return {**out, **overrides}


def add_options(
    p: argparse.ArgumentParser, cls: type, options: Options, default_out: str, config_file: bool = True
) -> None:
    """Add ``options`` (each help ends with the field's default) and the run options every task has."""
    defaults = cls()
    if config_file:
        p.add_argument(
            "--config",
            type=Path,
            default=None,
            help=f"JSON or TOML file with {cls.__name__} fields, or a preset's name (`odeflow presets`)",
        )
    for flag, (name, kwargs) in options.items():
        kwargs = dict(kwargs)
        kwargs["help"] = f"{kwargs.get('help', '')} (default {getattr(defaults, name)})".strip()
        p.add_argument(flag, dest=name, default=argparse.SUPPRESS, **kwargs)
    p.add_argument("--out", type=Path, default=argparse.SUPPRESS, help=f"run folder (default {default_out})")
    p.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its last.pt (exactly where it stopped)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder (default: refuse it)")
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard event files (RUN/tensorboard)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def compile_option(auto_means: str) -> Tuple[str, Dict[str, Any]]:
    """``--compile [auto|on|off]`` (a bare ``--compile`` is 'on') for a task whose ``compile`` field
    takes those values; ``auto_means`` says what 'auto' does for the task."""
    return (
        "compile",
        dict(
            nargs="?",
            const="on",
            choices=["auto", "on", "off"],
            help=f"solve through torch.compile: 'on' (bare --compile), 'off', or 'auto' ({auto_means}); "
            "compiled solvers are kept in $ODEFLOW_CACHE_DIR, default ~/.cache/odeflow",
        ),
    )
