"""Aligned-MTL (Senushkin et al. 2023, "Independent Component Alignment for Multi-Task Learning").

Make the task gradients orthogonal and of equal norm: with the Gram matrix `G G^T = V diag(s) V^T`, the
aligned gradients are `B @ G` with `B = sqrt(s_min) V diag(s^-1/2) V^T` (s_min the smallest non-negligible
eigenvalue), and the direction is their sum, `(1^T B) @ G`. Eigen-directions below the numerical rank
tolerance are dropped.
"""

from __future__ import annotations

import torch

from mtrl.combiners.base import GramWeighting, Stats


class AlignedMTL(GramWeighting):
    name = "aligned_mtl"

    def weigh(self, gram_in: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        gram = gram_in.double()
        eigenvalues, basis = torch.linalg.eigh(gram)
        tolerance = eigenvalues[-1].clamp_min(0) * gram.shape[0] * torch.finfo(torch.float32).eps
        kept = eigenvalues > tolerance
        inv_sqrt = torch.where(kept, eigenvalues.clamp_min(torch.finfo(gram.dtype).tiny).rsqrt(), 0.0)
        smallest = torch.where(kept, eigenvalues, torch.inf).amin()
        smallest = torch.where(kept.any(), smallest, 0.0)
        align = smallest.sqrt() * (basis * inv_sqrt) @ basis.T
        return align.sum(dim=0).to(gram_in.dtype), {}
