"""Registry of gradient combiners, selected by name with `--method`."""

from __future__ import annotations

from mtrl.combiners.base import Combiner
from mtrl.combiners.equal import EqualWeighting

COMBINERS: dict[str, type[Combiner]] = {
    EqualWeighting.name: EqualWeighting,
}


def make_combiner(name: str, num_tasks: int) -> Combiner:
    if name not in COMBINERS:
        raise ValueError(f"unknown method '{name}'; accepted: {', '.join(sorted(COMBINERS))}")
    return COMBINERS[name](num_tasks)


__all__ = ["COMBINERS", "Combiner", "make_combiner"]
