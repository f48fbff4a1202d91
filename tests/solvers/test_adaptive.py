import pytest
import torch

import odeflow

A = torch.tensor([[-0.1, 2.0], [-2.0, -0.1]], dtype=torch.float64)


def spiral(t, y):
    return (y**3) @ A


Y0 = torch.tensor([2.0, 0.0], dtype=torch.float64)
T = torch.linspace(0, 1.5, 30, dtype=torch.float64)


def reference():
    return odeflow.solve(spiral, Y0, T, method="dopri8", step=odeflow.Adaptive(rtol=1e-13, atol=1e-14)).ys


@pytest.mark.parametrize("method", ["bosh3", "dopri5", "tsit5", "dopri8"])
def test_error_shrinks_with_tolerance(method):
    ref = reference()
    errors = []
    for rtol in (1e-3, 1e-5, 1e-7, 1e-9):
        sol = odeflow.solve(spiral, Y0, T, method=method, step=odeflow.Adaptive(rtol=rtol, atol=rtol * 1e-2))
        errors.append(float((sol.ys - ref).abs().max()))
    assert all(b < a for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 1e-6


class Counted:
    def __init__(self, f):
        self.f, self.calls = f, 0

    def __call__(self, t, y):
        self.calls += 1
        return self.f(t, y)


@pytest.mark.parametrize(
    "method,step",
    [
        ("dopri5", odeflow.Adaptive(rtol=1e-6, atol=1e-8)),
        ("tsit5", odeflow.Adaptive(rtol=1e-4, atol=1e-6)),
        ("bosh3", odeflow.Adaptive(rtol=1e-5, atol=1e-7)),
        ("dopri8", odeflow.Adaptive(rtol=1e-9, atol=1e-9)),
        ("rk4", odeflow.FixedStep(0.01)),
        ("euler", odeflow.FixedStep(0.005)),
    ],
)
def test_nfe_statistics_are_exact(method, step):
    f = Counted(spiral)
    sol = odeflow.solve(f, Y0, T, method=method, step=step)
    assert sol.stats.nfe == f.calls
    assert sol.stats.steps == sol.stats.accepted + sol.stats.rejected


def test_nfe_formulas():
    """rk4: 4 per step; FSAL dopri5: 6 per attempted step + first stage + initial-step probe."""
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    assert odeflow.solve(spiral, Y0, t, method="rk4", step=odeflow.FixedStep(0.1)).stats.nfe == 40
    assert odeflow.solve(spiral, Y0, t, method="dopri5", step=odeflow.FixedStep(0.1)).stats.nfe == 61
    sol = odeflow.solve(spiral, Y0, T, method="dopri5", step=odeflow.Adaptive(rtol=1e-6, atol=1e-8))
    assert sol.stats.nfe == 2 + 6 * sol.stats.steps


def test_rejections_are_counted_and_recovered():
    """A first step far too large must be rejected, then the solve proceeds accurately."""
    sol = odeflow.solve(spiral, Y0, T, method="dopri5", step=odeflow.Adaptive(rtol=1e-8, atol=1e-10, first_step=1.0))
    assert sol.stats.rejected >= 1
    assert float((sol.ys - reference()).abs().max()) < 1e-6


def test_max_step_is_respected():
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    sol = odeflow.solve(
        lambda t, y: -y, Y0, t, method="dopri5", step=odeflow.Adaptive(rtol=1e-3, atol=1e-3, max_step=0.05)
    )
    assert sol.stats.accepted >= 20


def test_excluded_component_does_not_drive_step_size():
    """A wildly varying component with weight 0 leaves the step count of the rest unchanged."""
    t = torch.tensor([0.0, 3.0], dtype=torch.float64)

    def f(t, state):
        y, q = state
        return -y, 1e3 * torch.sin(50 * t) * torch.ones_like(q)

    y0 = (torch.ones(2, dtype=torch.float64), torch.zeros(1, dtype=torch.float64))
    both = odeflow.solve(f, y0, t, step=odeflow.Adaptive(rtol=1e-6, atol=1e-8))
    only_y = odeflow.solve(f, y0, t, step=odeflow.Adaptive(rtol=1e-6, atol=1e-8, weights=[1.0, 0.0]))
    alone = odeflow.solve(lambda t, y: -y, y0[0], t, step=odeflow.Adaptive(rtol=1e-6, atol=1e-8))
    assert only_y.stats.steps == alone.stats.steps
    assert both.stats.steps > 3 * only_y.stats.steps


def test_landing_on_outputs_with_jumps_matches_restarting_per_interval():
    """integrate_adaptive(land_on_outputs, jump): steps end on every output time and the state
    restarts there, as if each interval were solved separately from the jumped state."""
    from odeflow.solvers.loop import integrate_adaptive
    from odeflow.solvers.methods import get_method
    from odeflow.solvers.solution import SolverStats
    from odeflow.solvers.state import ErrorNorm, StatePacker

    tab, ctrl = get_method("dopri5"), odeflow.Adaptive(rtol=1e-10, atol=1e-12)
    norm = ErrorNorm(StatePacker(Y0), ctrl.rtol, ctrl.atol)
    times = [0.0, 0.3, 0.7, 1.0]
    kick = torch.tensor([0.1, -0.2], dtype=torch.float64)
    stats = SolverStats()
    outs, _ = integrate_adaptive(
        tab, spiral, Y0, times, ctrl, norm, stats, land_on_outputs=True, jump=lambda i, y: y + i * kick
    )
    y, expected = Y0, []
    for i in range(1, len(times)):
        y = odeflow.solve(spiral, y, times[i - 1 : i + 1], method="dopri8", step=odeflow.Adaptive(1e-13, 1e-14)).ys[-1]
        expected.append(y)
        y = y + i * kick
    torch.testing.assert_close(torch.stack(outs), torch.stack(expected), rtol=1e-8, atol=1e-9)
    assert stats.accepted >= len(times) - 1
    with pytest.raises(ValueError, match="land_on_outputs"):
        integrate_adaptive(tab, spiral, Y0, times, ctrl, norm, SolverStats(), jump=lambda i, y: y)
