"""PCGrad (Yu et al. 2020, "Gradient Surgery for Multi-Task Learning").

For each task i, visit the other tasks in random order and, whenever the (partly projected) g_i conflicts
with the original g_j (negative inner product), remove from it its component along g_j; sum the results.
Every projected gradient stays a combination of the original ones, `g_i' = C_i @ G`, so the whole procedure
runs on the K x K Gram matrix and the direction is `(1^T C) @ G`: task weights like any other combiner.
All tasks advance together, one random partner per step, so the loop runs K times, not K^2.
"""

from __future__ import annotations

import torch

from mtrl.combiners.base import GramWeighting, Stats


class PCGrad(GramWeighting):
    name = "pcgrad"

    def weigh(self, gram: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        k = gram.shape[0]
        coeffs = torch.eye(k, device=gram.device, dtype=gram.dtype)  # row i: g_i' in the basis of the g_j
        rows = torch.arange(k, device=gram.device)
        partners = torch.rand(k, k, device=gram.device).argsort(dim=1)  # row i: task i's random visiting order
        for t in range(k):
            j = partners[:, t]
            dots = (coeffs @ gram)[rows, j]  # g_i' . g_j
            conflict = (dots < 0) & (j != rows)
            step = torch.where(conflict, dots / gram[j, j].clamp_min(torch.finfo(gram.dtype).tiny), 0.0)
            coeffs[rows, j] -= step
        return coeffs.sum(dim=0), {}
