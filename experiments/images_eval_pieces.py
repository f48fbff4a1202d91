"""Why the RNODE digits models were costly to evaluate: dopri5 1e-5 NFE with weights constant in t vs
piecewise constant on 4 pieces (each piece perturbed by N(0, 0.05^2) so the pieces differ, as after training).

    PYTHONPATH=src OMP_NUM_THREADS=1 python experiments/images_eval_pieces.py
"""

import time

import torch

from odeflow.data.images import load_images
from odeflow.flows.image_transforms import dequantize
from odeflow.flows.multiscale import MultiscaleCNF
from odeflow.solvers.stepping import Adaptive

x = dequantize(load_images("digits", None, "val")[0][:32], torch.Generator().manual_seed(1))
for pieces in (1, 4):
    torch.manual_seed(0)
    f = MultiscaleCNF(
        (1, 8, 8),
        hidden=(32,) * 3,
        alpha=0.05,
        method="dopri5",
        step=Adaptive(1e-5, 1e-5),
        zero_init=False,
        pieces=pieces,
    )
    with torch.no_grad():
        for p in f.parameters():
            p.add_(0.05 * torch.randn_like(p))
    t0 = time.process_time()
    with torch.no_grad():
        b = float(f.bits_per_dim(x).mean())
    print(pieces, "pieces: nfe", f.nfe, "cpu s", round(time.process_time() - t0, 2), "bpd", round(b, 3), flush=True)
