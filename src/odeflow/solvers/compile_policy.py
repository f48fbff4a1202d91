"""`solve(..., compile="auto")`: compile only when the run is long enough to gain.

Compiling costs C once (C_cold when nothing is on disk, C_warm when an earlier process left
the compiled solver in the cache directory) and then saves s = c * (1 - 1/S) per call, with c
the eager cost of a call (forward and backward) and S the compiled speedup. With R calls
still to come, compiling gains when

    R * c * (1 - 1/S) > C.                                               (1)

c is measured: the first ``eager_calls`` calls of a problem run eagerly and are timed (the
forward solve times ``backward_factor``, or ``adjoint_factor`` for the continuous adjoint, to
include its backward pass; or the time between two solves of the problem if that is shorter). R is what the caller says (``expected_calls``,
e.g. the training task's iterations, counted down call by call); without it, R is taken to
be the number of calls made so far (a run is assumed to go on about as long as it has
lasted: compile once the eager time spent reaches about the compile cost, which is never
worse than twice the better choice in hindsight -- the ski-rental rule). C and S come from
the previous compile of the same problem recorded in the cache directory when there is
one, else from the defaults below (measured on the seed-000 spiral, 2-core CPU, torch 2.13).

auto never compiles what cannot be compiled (`odeflow.compiling.compile_possible`: implicit
Adams, explicit Adams off a FixedStep grid, step callbacks, explicit grids, checkpointed Disc-Opt, events with fixed
steps or methods other than explicit Runge-Kutta, no C++ compiler, adjoint parameters outside the field's module); if compiling fails anyway (e.g. torch.autograd.grad
in f), the problem is marked and solved eagerly from then on. Each fallback is logged at
debug level (loggers ``odeflow.compiling`` and ``odeflow.solvers.compile_policy``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from typing import Any, Dict, Hashable, Optional

from . import compile_cache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AutoCompile:
    """Settings of ``compile="auto"`` (equation (1) in the module docstring).

    expected_calls: solves of this problem still to come, counting this one (None: unknown).
    eager_calls: eager calls timed before the first decision.
    speedup: compiled speedup S per call when no earlier compile was recorded.
    cold_cost, warm_cost: first-call seconds C without / with the compiled solver on disk
        when no earlier compile was recorded.
    backward_factor: eager forward-and-backward time over forward time, backpropagation
        (Disc-Opt); adjoint_factor: the same for the continuous adjoint (Opt-Disc), whose backward
        solve with a vector-Jacobian product per stage costs several forward solves (about 8 on
        the spiral). The per-call cost is the smaller of forward x factor and the time from one
        call of the problem to the next.
    """

    expected_calls: Optional[int] = None
    eager_calls: int = 2
    speedup: float = 4.0
    cold_cost: float = 45.0
    warm_cost: float = 5.0
    backward_factor: float = 3.0
    adjoint_factor: float = 10.0

    def __post_init__(self) -> None:
        if self.expected_calls is not None and (not isinstance(self.expected_calls, int) or self.expected_calls < 0):
            raise ValueError(
                f"AutoCompile(expected_calls=...) must be a non-negative int or None; got {self.expected_calls!r}"
            )
        if self.eager_calls < 1:
            raise ValueError(f"AutoCompile(eager_calls=...) must be >= 1; got {self.eager_calls}")
        if self.speedup <= 1.0:
            raise ValueError(f"AutoCompile(speedup=...) must be > 1 (compiled calls faster); got {self.speedup}")
        if self.cold_cost < 0 or self.warm_cost < 0 or self.backward_factor < 1 or self.adjoint_factor < 1:
            raise ValueError(
                "AutoCompile costs must be >= 0 and backward_factor, adjoint_factor >= 1; got "
                f"cold_cost={self.cold_cost}, warm_cost={self.warm_cost}, "
                f"backward_factor={self.backward_factor}, adjoint_factor={self.adjoint_factor}"
            )


def gains(remaining: float, eager_call_s: float, speedup: float, compile_s: float) -> bool:
    """Equation (1): does compiling now save more than it costs?"""
    return remaining * eager_call_s * (1.0 - 1.0 / speedup) > compile_s


def has_cxx_compiler() -> bool:
    """A C++ compiler Inductor can use ($CXX, g++, c++ or clang++ on the PATH)."""
    cxx = os.environ.get("CXX")
    return any(shutil.which(c) for c in ([cxx] if cxx else []) + ["g++", "c++", "clang++"])


class _Record:
    """What auto knows about one problem in this process."""

    def __init__(self) -> None:
        self.calls = 0  # solves made so far
        self.eager_s, self.eager_n = 0.0, 0  # summed per-call cost estimates, eager
        self.compiled_s, self.compiled_n = 0.0, 0  # and compiled (after the first compiled call)
        self.last: Optional[tuple] = None  # (start, forward seconds, compiled) of the last call
        self.compiled = False  # decided to compile (sticky)
        self.ran_compiled = False  # a compiled call has been made
        self.logged = False
        self.checked = False  # compile_possible looked at
        self.failed = False  # compiling is impossible: eager from now on
        self.disk_key: Optional[str] = None

    def eager_call_s(self) -> float:
        return self.eager_s / max(self.eager_n, 1)

    def note_previous(self, now: float, factor: float) -> None:
        """Cost of the previous call: its forward time x factor, or the time since it began if shorter."""
        if self.last is None:
            return
        start, forward, compiled = self.last
        cost = min(now - start, forward * factor)
        if compiled:
            self.compiled_s, self.compiled_n = self.compiled_s + cost, self.compiled_n + 1
        else:
            self.eager_s, self.eager_n = self.eager_s + cost, self.eager_n + 1


_RECORDS: Dict[Hashable, _Record] = {}


def record_for(key: Hashable) -> _Record:
    rec = _RECORDS.get(key)
    if rec is None:
        if len(_RECORDS) > 1024:
            _RECORDS.clear()
        rec = _RECORDS[key] = _Record()
    return rec


def _history_path(disk_key: str):
    return compile_cache.cache_dir() / "compiled" / f"auto-{disk_key}.json"


def read_history(disk_key: Optional[str]) -> Dict[str, Any]:
    """Measured first-call seconds and speedup of earlier compiles of this problem, if any."""
    if disk_key is None:
        return {}
    try:
        return json.loads(_history_path(disk_key).read_text())
    except (OSError, ValueError):
        return {}


def write_history(disk_key: Optional[str], **values: float) -> None:
    if disk_key is None:
        return
    path = _history_path(disk_key)
    try:
        data = read_history(disk_key)
        data.update(values)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
    except OSError as e:
        log.debug("odeflow: could not record the compile history in %s: %s", path, e)


def decide(rec: _Record, policy: AutoCompile) -> bool:
    """Compile this call? (eager until ``eager_calls`` calls are timed, then equation (1))."""
    if rec.failed:
        return False
    if rec.compiled:
        return True
    if rec.eager_n < policy.eager_calls:
        return False
    history = read_history(rec.disk_key)
    warm = "warm_s" in history or "cold_s" in history
    cost = history.get("warm_s", policy.warm_cost) if warm else policy.cold_cost
    speedup = max(history.get("speedup", policy.speedup), 1.0 + 1e-9)
    if policy.expected_calls is not None:
        remaining = max(policy.expected_calls - rec.calls, 0)
    else:
        remaining = rec.calls
    ok = gains(remaining, rec.eager_call_s(), speedup, cost)
    if ok or not rec.logged:  # the first decision and the switch to compiling, not every call
        rec.logged = True
        log.debug(
            "odeflow auto-compile: %d calls to come x %.4f s eager x (1 - 1/%.1f) %s %.1f s %s compile -> %s",
            remaining,
            rec.eager_call_s(),
            speedup,
            ">" if ok else "<=",
            cost,
            "warm" if warm else "cold",
            "compile" if ok else "eager",
        )
    rec.compiled = ok
    return ok


COMPILE_CHOICES = ("auto", "on", "off")


def compile_choice(value: Any) -> Any:
    """A task's compile setting (config files, `--compile {auto,on,off}`) as `solve` takes it:
    'on'/True -> True, 'off'/False -> False, 'auto' -> 'auto'."""
    if isinstance(value, bool):
        return value
    if value in COMPILE_CHOICES:
        return {"on": True, "off": False}.get(value, "auto")
    raise ValueError(f"compile must be one of {', '.join(COMPILE_CHOICES)} (or true/false); got {value!r}")
