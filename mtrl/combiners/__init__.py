"""Registry of gradient combiners, selected by name with `--method`.

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

from mtrl.combiners.aligned_mtl import AlignedMTL
from mtrl.combiners.base import Combiner, GradientCombiner
from mtrl.combiners.cagrad import CAGrad
from mtrl.combiners.equal import EqualWeighting
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


def make_combiner(name: str, num_tasks: int, methods=None, role: str = "critic") -> Combiner:
    """Build combiner `name` for `num_tasks` tasks with its options from `methods` (a MethodsConfig);
    `role` ("actor" or "critic") says which loss it will combine."""
    from mtrl.config import MethodsConfig

    if name not in COMBINERS:
        raise ValueError(f"unknown method '{name}'; accepted: {', '.join(sorted(COMBINERS))}")
    methods = methods or MethodsConfig()
    options = dict(vars(getattr(methods, name))) if hasattr(methods, name) else {}  # section named as the method
    if name == FAMO.name:  # FAMO's rule needs positive losses, so it must know which loss it combines
        options["role"] = role
    return COMBINERS[name](num_tasks, **options)


__all__ = ["COMBINERS", "Combiner", "GradientCombiner", "make_combiner"]
