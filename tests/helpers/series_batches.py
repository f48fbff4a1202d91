"""Small random series batches shared by the neural CDE and RDE tests."""

import pytest
import torch
import torch.nn.functional as F

from odeflow.data.irregular import Series, collate


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny ops on 2 busy cores: torch's second thread makes each ~100x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def smooth_batch(seed, B=3, T=6, D=2):
    """Knots 0.2-0.5 apart and values of size 0.5, so that rk4 with h = 0.05 resolves the CDE."""
    g = torch.Generator().manual_seed(seed)
    times = torch.cumsum(torch.rand(T, generator=g, dtype=torch.float64) * 0.3 + 0.2, 0)
    values = 0.5 * torch.randn(B, T, D, generator=g, dtype=torch.float64)
    mask = (torch.rand(B, T, D, generator=g) < 0.7).to(torch.float64)
    mask[:, 0] = 1.0
    mask[0, -2:] = 0.0  # series 0 ends early: its loss enters at an interior output time
    return times, values, mask


def two_class_series(n, seed):
    """Class = sign of a linear drift under a sine of random phase and amplitude plus noise; each
    series keeps a random 12-20 of 24 grid times (so a batch's union grid stays short)."""
    g = torch.Generator().manual_seed(seed)
    grid = torch.linspace(0, 1, 24)
    out = []
    for i in range(n):
        label = i % 2
        m = 12 + int(torch.randint(0, 9, (1,), generator=g))
        t = grid[torch.sort(torch.randperm(24, generator=g)[:m]).values]
        phase, amp = float(torch.rand(1, generator=g)) * 6.28, 0.5 + float(torch.rand(1, generator=g))
        x = amp * torch.sin(4 * 3.14159 * t + phase) + (0.8 if label else -0.8) * t
        x = x + 0.05 * torch.randn(m, generator=g)
        out.append(Series(t, x[:, None], torch.ones(m, 1), float(label)))
    return out


def toy_test_accuracy(net, iterations: int = 40) -> float:
    """Train ``net(times, values, mask) -> logits`` on 96 `two_class_series` (Adam 1e-2, batch 32)
    and return its accuracy on 60 others (chance 0.5)."""
    train, test = two_class_series(96, 1), two_class_series(60, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(iterations):
        idx = torch.randperm(len(train), generator=g)[:32].tolist()
        b = collate([train[i] for i in idx])
        loss = F.cross_entropy(net(b.times, b.values, b.mask), b.labels.long())
        opt.zero_grad()
        loss.backward()
        opt.step()
    b = collate(test)
    with torch.no_grad():
        return float((net(b.times, b.values, b.mask).argmax(-1) == b.labels.long()).float().mean())
