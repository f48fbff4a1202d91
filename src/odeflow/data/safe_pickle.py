"""Loading a pandas DataFrame pickle (the GAS file) without running code from the file.

A pickle names the functions it calls to rebuild its objects; `pickle.load` would import and
call any of them (os.system included). `RestrictedUnpickler` only resolves an explicit allowlist
of the pandas/numpy reconstruction globals a plain numeric DataFrame needs (old pandas
locations are first renamed by pandas' own compatibility table) and refuses everything else
with an error that says how to convert the file to CSV instead.
"""

from __future__ import annotations

import functools
import pickle
from pathlib import Path
from typing import Any, Dict, FrozenSet, Tuple

ALLOWED: FrozenSet[Tuple[str, str]] = frozenset(
    {
        # the frame, its block manager and blocks
        ("pandas", "DataFrame"),
        ("pandas.core.frame", "DataFrame"),
        ("pandas.core.internals.managers", "BlockManager"),
        ("pandas.core.internals", "BlockManager"),
        ("pandas._libs.internals", "_unpickle_block"),
        ("pandas.core.internals.blocks", "new_block"),
        # its axes
        ("pandas.core.indexes.base", "_new_Index"),
        ("pandas", "Index"),
        ("pandas.core.indexes.base", "Index"),
        ("pandas", "RangeIndex"),
        ("pandas.core.indexes.range", "RangeIndex"),
        ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
        ("pandas.arrays", "StringArray"),
        ("pandas.core.arrays.string_", "StringArray"),
        ("pandas", "StringDtype"),
        ("pandas.core.arrays.string_", "StringDtype"),
        # numpy arrays and scalars
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        # plain containers used by protocols 0-2
        ("builtins", "slice"),
        ("__builtin__", "slice"),
        ("builtins", "object"),
        ("__builtin__", "object"),
        ("copyreg", "_reconstructor"),
        ("copy_reg", "_reconstructor"),
        ("_codecs", "encode"),
    }
)


@functools.cache
def _renames() -> Dict[Tuple[str, str], Tuple[str, str]]:
    """pandas' table of old class locations (pickles written by old pandas versions). Read on the
    first unpickling, not at import: importing this module (every `odeflow train`) must not import
    pandas, whose optional pyarrow backend aborted torchrun children at exit (gloo)."""
    try:
        from pandas.compat import pickle_compat
    except ImportError:  # pragma: no cover - depends on the pandas version
        return {}
    return dict(getattr(pickle_compat, "_class_locations_map", {}))


def conversion_hint(path: Path) -> str:
    csv = path.with_suffix(".csv")
    return (
        f"If you trust the file, convert it once with pandas and keep the CSV beside it: python -c "
        f"\"import pandas as pd; pd.read_pickle('{path}').to_csv('{csv}', index=False)\" and remove the "
        f"pickle (the loader reads {csv.name} when the pickle is absent)"
    )


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only `ALLOWED` globals; anything else raises pickle.UnpicklingError."""

    def find_class(self, module: str, name: str) -> Any:
        module, name = _renames().get((module, name), (module, name))
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: not part of a plain pandas DataFrame of numbers"
            )
        return super().find_class(module, name)  # also maps Python 2 names (__builtin__, copy_reg)


def load_dataframe_pickle(path: Path) -> Any:
    """The DataFrame in a pickle, built by `RestrictedUnpickler`; ValueError naming the refused
    global and the conversion command otherwise."""
    try:
        import pandas as pd
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("reading the GAS pickle needs pandas: pip install 'odeflow[tabular]'") from err
    if Path(path).is_dir():
        raise ValueError(f"pickle {path} is a folder, not a file")
    with open(path, "rb") as fh:
        try:
            obj = RestrictedUnpickler(fh).load()
        except (pickle.UnpicklingError, AttributeError, ImportError, EOFError, TypeError) as err:
            raise ValueError(
                f"{path}: cannot load it as a plain pandas DataFrame pickle ({err}). {conversion_hint(path)}"
            ) from err
    if not isinstance(obj, pd.DataFrame):
        raise ValueError(f"{path}: expected a pandas DataFrame, got {type(obj).__name__}. {conversion_hint(path)}")
    return obj
