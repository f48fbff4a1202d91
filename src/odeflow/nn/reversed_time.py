"""A field whose net reads its time backwards: g(t, x) = net(T - t, x) on [0, T].

odeflow's CNFs carry data at t = 0 to noise at t = T. FFJORD's concatsquash layer,
y = (W x + b) sigmoid(W_g t + b_g) + W_b t, loses its time features at t = 0: the shift W_b t is
zero there and the gate's gradient in W_g is proportional to t. Flow matching regresses the field
at every t, and the field is most complex on the data side; feeding the net T - t puts the data
at net-time T (where the flow-matching libraries, noise -> data, put it too) and the simple,
nearly Gaussian end at net-time 0. The CNF integrates g unchanged (exact trace, sampling,
inverse), so only the net's input is reparametrised.
"""

from __future__ import annotations

from torch import Tensor, nn


class ReversedTime(nn.Module):
    """g(t, x) = net(T - t, x); t is one time or one per sample, as the net takes it."""

    def __init__(self, net: nn.Module, T: float) -> None:
        super().__init__()
        if not float(T) > 0:
            raise ValueError(f"T must be > 0 (the end time the net's time is reversed on); got {T!r}")
        self.net, self.T = net, float(T)

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        return self.net(self.T - t, x)

    def extra_repr(self) -> str:
        return f"T={self.T:g}"
