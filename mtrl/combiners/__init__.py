"""Registry of gradient combiners, selected by name with `--method`. A method with options has its options
dataclass beside it (`Options`); the config's `methods.<name>` sections are those dataclasses.

| name          | what it does to the shared encoder's gradient                                  |
|---------------|---------------------------------------------------------------------------------|
| `mtsac`       | equal weighting: the sum of task gradients                                      |
| `ntkmtl`      | weights equalising the largest per-task NTK eigenvalues (exact, on parameters)  |
| `ntkmtl_sr`   | the same weights read at the shared representation; one backward pass           |
| `pcgrad`      | projects away conflicting components between task gradients                     |
| `cagrad`      | best worst-task improvement in a ball around the mean gradient                  |
| `nashmtl`     | Nash bargaining weights, `(G G^T) a = 1 / a`                                     |
| `fairgrad`    | alpha-fair weights, `(G G^T) w = w^(-1/alpha)`                                   |
| `famo`        | loss weights adapted so that all log-losses fall at the same rate               |
| `aligned_mtl` | aligns task gradients to an orthogonal, equal-norm set                          |
"""

from __future__ import annotations

from typing import Any

from mtrl.combiners.aligned_mtl import AlignedMTL
from mtrl.combiners.base import (
    Combiner,
    EqualWeighting,
    GramWeighting,
    KernelWeighting,
    LossWeighting,
    RepresentationWeighting,
)
from mtrl.combiners.cagrad import CAGrad
from mtrl.combiners.fairgrad import FairGrad
from mtrl.combiners.famo import FAMO
from mtrl.combiners.nashmtl import NashMTL
from mtrl.combiners.ntkmtl import NTKMTL
from mtrl.combiners.ntkmtl_sr import NTKMTLSR
from mtrl.combiners.pcgrad import PCGrad

COMBINERS: dict[str, type[Combiner]] = {
    cls.name: cls
    for cls in (EqualWeighting, NTKMTL, NTKMTLSR, PCGrad, CAGrad, NashMTL, FairGrad, FAMO, AlignedMTL)
}


def make_combiner(name: str, num_tasks: int, options: Any = None, role: str = "critic") -> Combiner:
    """Build combiner `name` for `num_tasks` tasks, with its options dataclass (None: the papers' defaults),
    for the loss of `role` ("actor" or "critic"). A method whose rule does not apply to that loss (FAMO's needs
    positive losses) leaves it equally weighted."""
    if name not in COMBINERS:
        raise ValueError(f"unknown method '{name}'; accepted: {', '.join(sorted(COMBINERS))}")
    cls = COMBINERS[name]
    if role not in cls.roles:
        return EqualWeighting(num_tasks)
    return cls(num_tasks, options) if cls.Options else cls(num_tasks)


__all__ = ["COMBINERS", "Combiner", "EqualWeighting", "GramWeighting", "KernelWeighting",
           "LossWeighting", "RepresentationWeighting", "make_combiner"]
