"""The diffrax (JAX) side of `peers_cpu.py`: run by a Python that has jax, diffrax and optax (a
separate virtual environment; never a dependency of odeflow). Reads the shared problem file
written by peers_cpu.py and prints one JSON line.

    python peers_jax.py PROBLEM.npz WORKLOAD ITERATIONS
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_ENABLE_X64", "1")

import diffrax  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402


def spiral(problem, workload: str, iterations: int) -> dict:
    t, u = jnp.asarray(problem["t"]), jnp.asarray(problem["u"])
    params = {k: jnp.asarray(problem[k]) for k in ("w1", "b1", "w2", "b2")}

    def field(_t, y, p):
        return jnp.tanh((y**3) @ p["w1"].T + p["b1"]) @ p["w2"].T + p["b2"]

    term = diffrax.ODETerm(field)
    if workload == "fixed":
        solver, controller, adjoint = diffrax.Tsit5(), diffrax.ConstantStepSize(), diffrax.RecursiveCheckpointAdjoint()
        dt0 = float(t[-1] - t[0]) / (len(t) - 1)
    else:
        solver = diffrax.Dopri5()
        controller = diffrax.PIDController(rtol=1e-7, atol=1e-9)
        adjoint, dt0 = diffrax.BacksolveAdjoint(), None

    def solve(p):
        return diffrax.diffeqsolve(
            term,
            solver,
            t[0],
            t[-1],
            dt0,
            u[0],
            args=p,
            saveat=diffrax.SaveAt(ts=t),
            stepsize_controller=controller,
            adjoint=adjoint,
            max_steps=100_000,
        )

    def loss(p):
        return jnp.sum((solve(p).ys - u) ** 2)

    opt = optax.adam(float(problem["lr"]))
    state = opt.init(params)

    @jax.jit
    def step(p, s):
        value, grads = jax.value_and_grad(loss)(p)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s, value

    start = time.perf_counter()
    params, state, value = step(params, state)
    jax.block_until_ready(value)
    first = time.perf_counter() - start
    times, losses = [], []
    for _ in range(iterations):
        start = time.perf_counter()
        params, state, value = step(params, state)
        jax.block_until_ready(value)
        times.append(time.perf_counter() - start)
        losses.append(float(value))
    stats = solve(params).stats
    return {
        "ms_per_iter": 1e3 * float(np.median(times)),
        "first_call_s": first,
        "forward_steps": int(stats["num_accepted_steps"]),
        "final_loss": losses[-1],
    }


def main() -> None:
    path, workload, iterations = sys.argv[1], sys.argv[2], int(sys.argv[3])
    problem = dict(np.load(path))
    out = spiral(problem, workload, iterations)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["versions"] = f"jax {jax.__version__}, diffrax {diffrax.__version__}"
    print(json.dumps(out))


if __name__ == "__main__":
    main()
