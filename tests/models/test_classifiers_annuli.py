"""The concentric annuli (Dupont et al. 2019): a plain neural ODE's flow is a homeomorphism of
the plane, augmentation lifts that limit.

Topological fact checked here: phi(circle of radius r) winds around phi(0), so it meets the ray
from phi(0) in the direction where the head's score s = logit_1 - logit_0 decreases; hence for
every radius r in the outer annulus, min_theta s(phi(r, theta)) <= s(phi(0)). When the origin is
classified correctly (s(phi(0)) < 0) every such circle has a misclassified point: a plain
neural ODE with a linear head can never be 100% right on the annuli, whatever its weights. An
augmented ODE beats that bound after the same brief training.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from odeflow import Adaptive
from odeflow.data import make_annuli
from odeflow.models import mlp_classifier

RADII = (1.0, 1.25, 1.5)


def _dense_probe():
    g = torch.linspace(-1.5, 1.5, 121)
    p = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    r = p.norm(dim=1)
    keep = (r <= 0.5) | ((r >= 1.0) & (r <= 1.5))
    return p[keep], (r[keep] >= 1.0).long()


@pytest.fixture(scope="module")
def trained():
    x, y = make_annuli(256, seed=0)
    models = {}
    for kind in ("odenet", "anode"):
        torch.manual_seed(0)
        model = mlp_classifier(kind, 2, 2, hidden=(16, 16), activation="tanh", augment=1, resnet_steps=4)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(100):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.set_solver("dopri5", Adaptive(1e-6, 1e-6))  # the flow itself, not a coarse map
        models[kind] = model
    return models


def _score(model, z):
    with torch.no_grad():
        logits = model(z)
    return logits[:, 1] - logits[:, 0]


def _circle_minima(model):
    ang = torch.linspace(0, 2 * math.pi, 2049)[:-1]
    return [float(_score(model, r * torch.stack([ang.cos(), ang.sin()], 1)).min()) for r in RADII]


def test_plain_node_keeps_the_inner_disk_enclosed(trained):
    model = trained["odenet"]
    s0 = float(_score(model, torch.zeros(1, 2)))
    assert s0 < 0  # the origin is classified as inner ...
    for m in _circle_minima(model):  # ... so every outer circle has a point scored at least as 'inner'
        assert m <= s0 + 1e-6


def test_augmented_node_separates_and_beats_the_bound(trained):
    model = trained["anode"]
    s0 = float(_score(model, torch.zeros(1, 2)))
    assert all(m > 0 > s0 for m in _circle_minima(model))
    p, py = _dense_probe()
    with torch.no_grad():
        acc = {k: float((m(p).argmax(1) == py).float().mean()) for k, m in trained.items()}
    assert acc["anode"] == 1.0
    assert acc["odenet"] < 1.0
