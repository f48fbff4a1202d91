"""Compiled solver functions kept on disk across processes.

A compiled solve spends its first call tracing (dynamo), building the forward and backward
graphs (AOTAutograd), generating code and running the C++ compiler. Inductor's own caches
cannot hold a fixed-grid solve (its ``scan`` loop is a higher-order op they refuse), and
dynamo traces again in every process anyway. So each compiled function is compiled ahead of
time (``torch.compile(...).aot_compile``) and the result -- graphs, generated code, compiled
C++ and the guards on its inputs -- is saved as one file under the cache directory; a later
process with the same function, vector field and shapes loads it instead of compiling
(seconds instead of tens of seconds; what remains is mostly importing Inductor itself).

Cache directory: ``$ODEFLOW_CACHE_DIR``, else ``~/.cache/odeflow``; `set_cache_dir` changes
it. Compiled solvers live in ``<dir>/compiled``; Inductor's own cache (the compiled C++ they
load) in ``<dir>/inductor`` unless ``TORCHINDUCTOR_CACHE_DIR`` was set before importing
odeflow. Delete the folder to start cold. Saved solvers are code: they are created in a folder
only this user may write to, and loaded only from such a folder (else compiled in-process).

An entry is named by a fingerprint of everything the compiled code depends on: the torch
version, odeflow's solver sources, the function, and every argument -- tensors by shape,
dtype, device and requires_grad, numbers by value, functions by their code (and what their
closures and the globals they name hold), modules by class code, structure and parameter
shapes. What cannot be fingerprinted is compiled in-process only (as before, not persisted).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import logging
import os
import types
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Sequence

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)
_ENV = "ODEFLOW_CACHE_DIR"
_cache_dir: Optional[Path] = None


def cache_dir() -> Path:
    """The odeflow cache directory: `set_cache_dir`, else $ODEFLOW_CACHE_DIR, else ~/.cache/odeflow."""
    if _cache_dir is not None:
        return _cache_dir
    env = os.environ.get(_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "odeflow"


def set_cache_dir(path: Optional[os.PathLike]) -> None:
    """Use ``path`` for compiled solvers from now on (None: back to $ODEFLOW_CACHE_DIR / default)."""
    global _cache_dir
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"set_cache_dir expects a path or None; got {type(path).__name__}")
    _cache_dir = None if path is None else Path(path).expanduser()


# Inductor writes its cache where $TORCHINDUCTOR_CACHE_DIR says, and sets that variable to its
# default (/tmp/torchinductor_<user>) the first time it looks: what the user set counts only if
# it was set before odeflow was imported.
_USER_INDUCTOR_DIR = os.environ.get("TORCHINDUCTOR_CACHE_DIR")


@contextlib.contextmanager
def inductor_cache_env() -> Iterator[None]:
    """Inductor's own cache (kernels, graphs) under the odeflow cache while compiling or loading,
    unless the user chose one with $TORCHINDUCTOR_CACHE_DIR (a saved compiled solver refers
    to the compiled C++ there: without it, loading builds the C++ again)."""
    old = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = _USER_INDUCTOR_DIR or str(cache_dir() / "inductor")
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
        else:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = old


class Unfingerprintable(Exception):
    """An argument whose identity across processes cannot be established."""


def _solver_sources() -> str:
    here = Path(__file__).parent
    h = hashlib.sha256()
    for p in sorted(here.glob("*.py")):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


_SOURCES: Optional[str] = None


def _code(code: types.CodeType, parts: List[str], depth: int) -> None:
    parts.append(f"code:{code.co_name}:{code.co_code.hex()}:{code.co_names}:{code.co_varnames}")
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _code(const, parts, depth)
        else:
            parts.append(repr(const))


def _walk(obj: Any, parts: List[str], seen: set, depth: int) -> None:
    if depth > 12:
        raise Unfingerprintable("too deeply nested")
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, torch.dtype, torch.device)):
        parts.append(f"{type(obj).__name__}:{obj!r}")
        return
    if isinstance(obj, Tensor):
        parts.append(f"tensor:{tuple(obj.shape)}:{obj.dtype}:{obj.device.type}:{obj.requires_grad}")
        return
    if id(obj) in seen:
        parts.append("<seen>")
        return
    seen.add(id(obj))
    if isinstance(obj, (tuple, list)):
        parts.append(f"{type(obj).__name__}[{len(obj)}]")
        for x in obj:
            _walk(x, parts, seen, depth + 1)
    elif isinstance(obj, dict):
        parts.append(f"dict[{len(obj)}]")
        for k in sorted(obj, key=repr):
            parts.append(repr(k))
            _walk(obj[k], parts, seen, depth + 1)
    elif isinstance(obj, types.ModuleType):
        parts.append(f"module:{obj.__name__}")
    elif isinstance(obj, types.MethodType):
        _walk(obj.__func__, parts, seen, depth + 1)
        _walk(obj.__self__, parts, seen, depth + 1)
    elif isinstance(obj, types.FunctionType):
        _function(obj, parts, seen, depth)
    elif isinstance(obj, (types.BuiltinFunctionType, type)) or callable(obj) and obj.__class__.__module__ == "torch":
        parts.append(f"named:{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', repr(obj))}")
    elif isinstance(obj, nn.Module):
        _class(type(obj), parts)
        for name, value in sorted(vars(obj).items()):
            if name in ("_parameters", "_buffers", "_modules"):
                for k, v in value.items():
                    parts.append(f"{name}.{k}")
                    _walk(v, parts, seen, depth + 1)
            elif not name.startswith("_") or name == "_forward_hooks":
                parts.append(name)
                _walk(value, parts, seen, depth + 1)
    elif dataclasses.is_dataclass(obj) or hasattr(obj, "__dict__") or hasattr(obj, "__slots__"):
        _class(type(obj), parts)
        fields = dict(vars(obj)) if hasattr(obj, "__dict__") else {}
        for slot in getattr(type(obj), "__slots__", ()):
            if hasattr(obj, slot):
                fields[slot] = getattr(obj, slot)
        _walk(fields, parts, seen, depth + 1)
    else:
        raise Unfingerprintable(f"cannot fingerprint a {type(obj).__name__}")


def _class(cls: type, parts: List[str]) -> None:
    """A class by name and the code of the methods it and its non-torch bases define."""
    parts.append(f"class:{cls.__module__}.{cls.__qualname__}")
    for klass in cls.__mro__:
        if klass.__module__.startswith(("torch", "builtins")):
            continue
        for _name, member in sorted(vars(klass).items()):
            fn = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
            if isinstance(fn, types.FunctionType):
                _code(fn.__code__, parts, 0)


def _function(fn: types.FunctionType, parts: List[str], seen: set, depth: int) -> None:
    parts.append(f"function:{fn.__module__}.{fn.__qualname__}")
    _code(fn.__code__, parts, depth)
    for cell in fn.__closure__ or ():
        try:
            _walk(cell.cell_contents, parts, seen, depth + 1)
        except ValueError:  # empty cell
            parts.append("<empty>")
    _walk(fn.__defaults__, parts, seen, depth + 1)
    # user-level globals the code names (helper functions, constants), not modules/classes
    for name in _global_names(fn.__code__):
        value = fn.__globals__.get(name)
        if isinstance(value, (types.FunctionType, int, float, str, tuple, Tensor, nn.Module)):
            parts.append(f"global:{name}")
            if isinstance(value, tuple):  # a tuple of odd objects is named by its length only
                try:
                    sub: List[str] = []
                    _walk(value, sub, seen, depth + 1)
                    parts.extend(sub)
                except Unfingerprintable:
                    parts.append(f"tuple[{len(value)}]")
            else:
                _walk(value, parts, seen, depth + 1)


def _global_names(code: types.CodeType) -> List[str]:
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names += _global_names(const)
    return names


def fingerprint(fn: Callable, args: Sequence[Any]) -> str:
    """A stable name for (fn, args) across processes; raises Unfingerprintable."""
    global _SOURCES
    if _SOURCES is None:
        _SOURCES = _solver_sources()
    parts: List[str] = [torch.__version__, _SOURCES, f"grad:{torch.is_grad_enabled()}"]
    seen: set = set()
    _walk(fn, parts, seen, 0)
    for a in args:
        _walk(a, parts, seen, 0)
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def entry_path(name: str) -> Path:
    return cache_dir() / "compiled" / f"{name}.bin"


# ---- compiling ahead of time, saving and loading -------------------------------------------


def _guard_filter(entries) -> List[bool]:
    """Keep the guards on the arguments (shapes, dtypes, constants) that can be saved; drop
    those on globals and object identities (the fingerprint stands for them)."""
    from torch._dynamo.guards import CheckFunctionManager

    bad = set(CheckFunctionManager.UNSUPPORTED_SERIALIZATION_GUARD_TYPES)
    return [
        not (
            e.is_global
            or e.guard_type in bad
            or bad.intersection(e.derived_guard_types or ())
            or "__import__" in e.name
        )
        for e in entries
    ]


@functools.lru_cache(maxsize=1)
def supported() -> bool:
    """Whether this torch can compile ahead of time, save and load (torch >= 2.12's
    ``torch.compile(...).aot_compile`` and ``torch.compiler.load_compiled_function``); older
    versions compile in-process only, as before."""
    from torch._dynamo import exc as dynamo_exc

    return (
        hasattr(torch.compiler, "load_compiled_function")
        and hasattr(dynamo_exc, "PackageError")
        and hasattr(torch.compile(lambda x: x), "aot_compile")
    )


def aot_compile(fn: Callable, args: Sequence[Any], options: dict) -> Callable:
    """fn compiled for these arguments (Inductor with ``options``), forward and backward,
    as an object that `save` can write. Raises what torch.compile raises."""
    copy = types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    # The scan loop is refused by Inductor's graph caches by default; its body graphs are part
    # of the graph that is hashed, so caching it is safe here.
    cacheable = {"torch.ops.higher_order.scan": torch.__version__}
    with torch._inductor.config.patch(unsafe_marked_cacheable_functions=cacheable), inductor_cache_env():
        compiled = torch.compile(
            copy,
            fullgraph=True,
            dynamic=False,
            backend="inductor",
            options={**options, "guard_filter_fn": _guard_filter},
        )
        return compiled.aot_compile((tuple(args), {}))  # type: ignore[attr-defined]  # not in torch's stubs


def save(compiled: Callable, path: Path) -> bool:
    """Write a compiled function to ``path`` (atomically); False, logged, when it cannot be saved."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        compiled.save_compiled_function(str(tmp))  # type: ignore[attr-defined]  # not in torch's stubs
        os.replace(tmp, path)
        return True
    except Exception as e:  # noqa: BLE001 - persistence is an optimisation; compiling still worked
        log.debug("odeflow: could not save the compiled solver to %s: %s", path, e)
        return False


def load(path: Path, fn: Callable) -> Optional[Callable]:
    """The compiled function saved at ``path``; None (logged) when it cannot be read."""
    from torch._guards import TracingContext, tracing

    if not private(path.parent):
        log.warning(
            "odeflow: not loading compiled solvers from %s: the folder is not private to this user "
            "(its files are executable code); compiling in-process instead",
            path.parent,
        )
        return None
    try:
        with open(path, "rb") as fh, tracing(TracingContext(None)), inductor_cache_env():
            return torch.compiler.load_compiled_function(fh, f_globals=fn.__globals__)
    except Exception as e:  # noqa: BLE001 - a stale or foreign file: compile again
        log.debug("odeflow: could not load the compiled solver %s (%s); compiling again", path, e)
        return None


def private(folder: Path) -> bool:
    """Whether ``folder`` belongs to this user and nobody else may write to it: saved compiled
    solvers are code (pickled graphs, compiled C++), trusted only from such a folder."""
    try:
        st = folder.stat()
    except OSError:
        return False
    owner_ok = not hasattr(os, "getuid") or st.st_uid == os.getuid()
    return owner_ok and not st.st_mode & 0o022


def guard_failed(error: BaseException) -> bool:
    """Whether ``error`` is a loaded function refusing arguments it was not compiled for."""
    return isinstance(error, RuntimeError) and "GuardManager check failed" in str(error)
