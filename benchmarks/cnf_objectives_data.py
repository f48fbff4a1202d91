"""The data sets of `benchmarks/cnf_objectives.py`: what each entry trains on, the shared net,
the flow that integrates it, and the one evaluator (dopri5 rtol = atol = 1e-5, exact trace).

  8gaussians, checkerboard   2-D toy densities; FFJORD's toy net (ODENet 64-64-64 concatsquash,
                             tanh); NLL in nats; a fresh batch per iteration.
  digits                     the built-in tabular digits (64-D, odeflow.data.tabular); the net of
                             configs/digits.toml (ODENet 128-128 concatsquash, softplus); nats.
  miniboone-shaped           <data dir>/miniboone/data.npy where present, else a synthetic array of
                             MINIBOONE's shape (36,488 x 43; log-normal, skewed and heavy-tailed
                             columns mixed by a fixed random matrix) put through MINIBOONE's own
                             split and standardisation (`preprocess_miniboone`); the digits recipe's
                             net width (multiplier 2: ODENet 86-86 concatsquash, softplus), not
                             Table 3's multiplier 20, so that exact-trace evaluations fit the time.
  image-digits               the built-in 8x8 digits as images (odeflow.data.images), dequantized;
                             the single-scale image CNF of `odeflow train image --objective
                             flow-matching` with configs/image_digits.toml's net (ConvODENet 32-32,
                             softplus, zero init, logit alpha 0.05); the flow acts on y = logit(x)
                             and is scored in bits/dim of the 8-bit images.
Tabular and image entries draw shuffled epochs of the training split (the same order for every
entry of a seed); the test set is the first `test_max` test rows (images: all 359 test images).
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from odeflow.data.toy2d import sample_toy
from odeflow.flows import CNF
from odeflow.flows.cnf import standard_normal_logprob
from odeflow.flows.evaluation import evaluate_density, image_bits_per_dim
from odeflow.flows.image_transforms import dequantize, logit_transform
from odeflow.flows.multiscale import MultiscaleCNF
from odeflow.nn import ODENet
from odeflow.nn.conv import ConvODENet
from odeflow.solvers.stepping import Adaptive

DOPRI5 = Adaptive(1e-5, 1e-5)
TOY = ("8gaussians", "checkerboard")
DATA = (*TOY, "digits", "miniboone-shaped", "image-digits")


def true_nll(data: str, x: Tensor) -> Optional[float]:
    """-log p(x) under the generating density, where it has a closed form."""
    if data == "8gaussians":
        s = 1 / math.sqrt(2)
        c = 4.0 * torch.tensor([(1, 0), (-1, 0), (0, 1), (0, -1), (s, s), (s, -s), (-s, s), (-s, -s)]) / 1.414
        sd = 0.5 / 1.414
        d2 = ((x.double()[:, None, :] - c.double()[None]) ** 2).sum(-1)
        logp = torch.logsumexp(-0.5 * d2 / sd**2, dim=1) - math.log(8) - math.log(2 * math.pi * sd**2)
        return float(-logp.mean())
    if data == "checkerboard":
        return math.log(32.0)  # uniform on 8 squares of side 2
    return None


def miniboone_shaped(seed: int = 0) -> np.ndarray:
    """36,488 x 43 raw rows of MINIBOONE's shape: 12 latent Gaussians mixed by a fixed matrix, then
    15 log-normal, 14 skewed (h + 0.3 h^2) and 14 heavy-tailed (h + Student-t(3)) columns."""
    rng = np.random.RandomState(seed)
    n = 36_488
    h = rng.randn(n, 12) @ rng.randn(12, 43) / math.sqrt(12)
    out = np.empty_like(h)
    out[:, :15] = np.exp(0.7 * h[:, :15])
    out[:, 15:29] = h[:, 15:29] + 0.3 * h[:, 15:29] ** 2
    out[:, 29:] = h[:, 29:] + 0.3 * rng.standard_t(3, size=(n, 14))
    return out


class Problem:
    """One data set: batches, test set, the shared net, its flow and the evaluator."""

    unit = "nats"

    def __init__(self, name: str, test_max: int) -> None:
        self.name, self.test_max = name, test_max
        self.train: Optional[Tensor] = None
        self.note = ""
        if name in TOY:
            self.dim, self.batch = 2, 256
            self.x_test = sample_toy(name, test_max, seed=777)
        elif name in ("digits", "miniboone-shaped"):
            self._tabular(name)
        else:
            raise ValueError(f"unknown data {name!r}; valid: {', '.join(DATA)}")
        self.true = true_nll(name, self.x_test)

    def _tabular(self, name: str) -> None:
        from odeflow.data.tabular import data_dir, load_tabular, preprocess_miniboone

        if name == "digits":
            data = load_tabular("digits")
            train, test, self.batch, self.hidden = data.train, data.test, 200, 128
        else:
            real = data_dir() / "miniboone" / "data.npy"
            if real.is_file():
                data = load_tabular("miniboone")
                train, test = data.train, data.test
                self.note = f"the real MINIBOONE file {real}"
            else:
                train, _, test = preprocess_miniboone(miniboone_shaped())
                self.note = "synthetic rows of MINIBOONE's shape (no miniboone/data.npy in the data dir)"
            self.batch, self.hidden = 1000, 86
        self.train = torch.tensor(np.asarray(train), dtype=torch.float32)
        self.x_test = torch.tensor(np.asarray(test)[: self.test_max], dtype=torch.float32)
        self.dim = self.train.shape[1]

    # --- what every entry shares -------------------------------------------------------------
    def fresh_net(self, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        if self.name in TOY:
            return ODENet(2, [64, 64, 64], layer="concatsquash", activation="tanh")
        return ODENet(self.dim, [self.hidden, self.hidden], layer="concatsquash", activation="softplus")

    def sample(self, seed: int, it: int, size: Optional[int] = None) -> Tensor:
        """Batch `it` of a seed: a fresh toy sample (of `size` points), or the next slice of a
        shuffled epoch."""
        if self.train is None:
            return sample_toy(self.name, size or self.batch, seed=1_000_000 * seed + it)
        per_epoch = len(self.train) // self.batch
        epoch, k = divmod(it, per_epoch)
        order = torch.randperm(len(self.train), generator=torch.Generator().manual_seed(10_000 * seed + epoch))
        return self.train[order[k * self.batch : (k + 1) * self.batch]]

    def data_end(self, x: Tensor) -> Tensor:
        """The flow's state at the data end (what the peers regress on)."""
        return x

    def flow(self, net: nn.Module, T: float, **kw: Any):
        """The flow odeflow integrates with `net` as its field."""
        return CNF(net, self.dim, T=T, **kw)

    def evaluate(self, net: nn.Module, T: float) -> Tuple[float, int]:
        """(test NLL, NFE) with the exact trace, dopri5 1e-5."""
        flow = CNF(net, self.dim, T=T, divergence="exact", method="dopri5", step=DOPRI5)
        with torch.no_grad():
            z, logdet = flow.transform(self.x_test)
        return float(-(standard_normal_logprob(z) - logdet).mean()), int(flow.last_stats.nfe)

    def default_targets(self) -> List[float]:
        return {"8gaussians": [3.15, 3.00, 2.85], "checkerboard": [3.90, 3.70, 3.55]}.get(self.name, [])


class ImageProblem(Problem):
    """image-digits: the single-scale image CNF, scored in bits/dim."""

    unit = "bits/dim"

    def __init__(self, test_max: int) -> None:
        from odeflow.data.images import load_images

        self.name, self.test_max, self.note = "image-digits", test_max, ""
        self.shape, self.alpha, self.batch = (1, 8, 8), 0.05, 64
        self.dim = 64
        self.images = load_images("digits", None, "train")[0]
        self.x_test = dequantize(load_images("digits", None, "test")[0][:test_max], torch.Generator().manual_seed(7))
        self.true = None
        self.train = None

    def fresh_net(self, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return ConvODENet(self.shape, [32, 32], "softplus")

    def sample(self, seed: int, it: int, size: Optional[int] = None) -> Tensor:
        per_epoch = len(self.images) // self.batch
        epoch, k = divmod(it, per_epoch)
        order = torch.randperm(len(self.images), generator=torch.Generator().manual_seed(10_000 * seed + epoch))
        g = torch.Generator().manual_seed(1_000_000 * seed + it)
        return dequantize(self.images[order[k * self.batch : (k + 1) * self.batch]], g)

    def data_end(self, x: Tensor) -> Tensor:
        return logit_transform(x, self.alpha)[0].reshape(x.shape[0], -1)

    def flow(self, net: nn.Module, T: float, **kw: Any) -> MultiscaleCNF:
        flow = MultiscaleCNF(self.shape, scales=1, hidden=(32, 32), T=T, alpha=self.alpha, **kw)
        flow.cnfs[0].net = net  # the entry's own net (weights shared, not copied)
        return flow

    def evaluate(self, net: nn.Module, T: float) -> Tuple[float, int]:
        flow = self.flow(net, T)
        r = evaluate_density(flow, self.x_test, "dopri5", DOPRI5, divergence="exact", inverse=False)
        return float(image_bits_per_dim(r, self.dim)["bits_per_dim"]), int(r["nfe"])


def make_problem(name: str, test_max: int) -> Problem:
    return ImageProblem(test_max) if name == "image-digits" else Problem(name, test_max)


def describe(problem: Problem) -> Dict[str, Any]:
    return dict(
        data=problem.name,
        dim=problem.dim,
        unit=problem.unit,
        batch=problem.batch,
        test_rows=int(problem.x_test.shape[0]),
        true=problem.true,
        note=problem.note,
    )
