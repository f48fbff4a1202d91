import os
import sys
from pathlib import Path

import pytest
import torch

# shared test code (the list of every method and every flow, a toy task) imports as `helpers.X`;
# not `tests.X`: a package installed in site-packages already owns that name
sys.path.insert(0, str(Path(__file__).parent))

if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test` runs one worker per core: one torch thread each
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True, scope="session")
def _odeflow_cache_dir(tmp_path_factory):
    """Compiled solvers go to a per-session folder, never the user's ~/.cache/odeflow."""
    import os

    from odeflow.solvers import compile_cache

    path = tmp_path_factory.mktemp("odeflow-cache")
    old = os.environ.get("ODEFLOW_CACHE_DIR")
    os.environ["ODEFLOW_CACHE_DIR"] = str(path)
    yield path
    compile_cache.set_cache_dir(None)
    if old is None:
        os.environ.pop("ODEFLOW_CACHE_DIR", None)
    else:
        os.environ["ODEFLOW_CACHE_DIR"] = old


@pytest.fixture(autouse=True, scope="session")
def _system_malloc():
    """Compiled training runs leave glibc's malloc as it is here (the engine would otherwise make
    the test process keep freed memory, which changes the RSS that memory plans read)."""
    import os

    old = os.environ.get("ODEFLOW_KEEP_FREED_MEMORY")
    os.environ["ODEFLOW_KEEP_FREED_MEMORY"] = "0"
    yield
    if old is None:
        os.environ.pop("ODEFLOW_KEEP_FREED_MEMORY", None)
    else:
        os.environ["ODEFLOW_KEEP_FREED_MEMORY"] = old
