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
    final = solve(params)
    ref = diffrax.diffeqsolve(
        term,
        diffrax.Dopri8(),
        t[0],
        t[-1],
        None,
        u[0],
        args=params,
        saveat=diffrax.SaveAt(ts=t),
        stepsize_controller=diffrax.PIDController(rtol=1e-13, atol=1e-14),
        max_steps=100_000,
    )
    return {
        "ms_per_iter": 1e3 * float(np.median(times)),
        "first_call_s": first,
        "forward_steps": int(final.stats["num_accepted_steps"]),
        "forward_error": float(jnp.max(jnp.abs(final.ys - ref.ys))),
        "final_loss": losses[-1],
    }


def cnf(problem, iterations: int) -> dict:
    """The CNF step of peers_cpu.py in plain JAX (diffrax has no classic rk4): augmented field
    (z, log-density change, RNODE kinetic and Jacobian rates), 4 rk4 steps on [0, 0.5], float32."""
    f32 = jnp.float32
    names = [k[4:] for k in problem if k.startswith("cnf.")]
    params = {k: jnp.asarray(problem["cnf." + k], dtype=f32) for k in names}
    n_layers = 1 + max(int(k.split(".")[1]) for k in names)
    data = jnp.asarray(problem["cnf_data"], dtype=f32)

    def net(p, t, z):
        tt = jnp.reshape(t, (1, 1)).astype(f32)
        for i in range(n_layers):
            q = f"layers.{i}."
            gate = jax.nn.sigmoid(tt @ p[q + "gate.weight"].T + p[q + "gate.bias"])
            z = (z @ p[q + "linear.weight"].T + p[q + "linear.bias"]) * gate + tt @ p[q + "shift.weight"].T
            if i < n_layers - 1:
                z = jnp.tanh(z)
        return z

    def rates(p, t, state, e):
        z = state[0]
        f, vjp = jax.vjp(lambda z_: net(p, t, z_), z)
        ej = vjp(e)[0]
        div = jnp.sum(ej * e, axis=1)
        return (f, -div, 0.5 * jnp.mean(f * f, axis=1), jnp.mean(ej * ej, axis=1))

    def rk4(p, x, e, T=0.5, n=4):
        h = T / n
        zero = jnp.zeros(x.shape[0], f32)
        y = (x, zero, zero, zero)
        add = lambda a, b, c: tuple(ai + c * bi for ai, bi in zip(a, b))  # noqa: E731
        for k in range(n):
            t = k * h
            k1 = rates(p, t, y, e)
            k2 = rates(p, t + h / 2, add(y, k1, h / 2), e)
            k3 = rates(p, t + h / 2, add(y, k2, h / 2), e)
            k4 = rates(p, t + h, add(y, k3, h), e)
            y = tuple(yi + h / 6 * (a + 2 * b + 2 * c + d) for yi, a, b, c, d in zip(y, k1, k2, k3, k4))
        return y

    def loss(p, x, key):
        e = jax.random.normal(key, x.shape, f32)
        z, logdet, kin, jac = rk4(p, x, e)
        logp_z = -0.5 * jnp.sum(z * z, axis=1) - z.shape[1] * 0.5 * jnp.log(2 * jnp.pi)
        nll = -jnp.mean(logp_z - logdet)
        return nll + 0.01 * jnp.mean(kin) + 0.01 * jnp.mean(jac)

    opt = optax.adam(1e-3)
    state = opt.init(params)

    @jax.jit
    def step(p, s, x, key):
        value, grads = jax.value_and_grad(loss)(p, x, key)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s, value

    key = jax.random.PRNGKey(0)
    times, value = [], None
    start = time.perf_counter()
    for i in range(iterations + 1):
        key, sub = jax.random.split(key)
        params, state, value = step(params, state, data[i % data.shape[0]], sub)
        jax.block_until_ready(value)
        now = time.perf_counter()
        times.append(now - start)
        start = now
    return {
        "ms_per_iter": 1e3 * float(np.median(times[1:])),
        "first_call_s": times[0],
        "forward_steps": 4,
        "nfe": 16,
        "final_loss": float(value),
    }


def main() -> None:
    path, workload, iterations = sys.argv[1], sys.argv[2], int(sys.argv[3])
    problem = dict(np.load(path))
    out = cnf(problem, iterations) if workload == "cnf" else spiral(problem, workload, iterations)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["versions"] = f"jax {jax.__version__}, diffrax {diffrax.__version__}"
    print(json.dumps(out))


if __name__ == "__main__":
    main()
