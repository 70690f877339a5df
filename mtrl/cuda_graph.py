"""The whole SAC update captured once in a CUDA graph and replayed (`sac.cuda_graph`).

At the published network size the update is a few hundred small kernels, and on a GPU launching them one by
one costs more than running them. A CUDA graph records the kernels of one update and replays them with a single
launch. Replay repeats exactly what was recorded: the same memory, read and written in place. So the batch is
copied into tensors the graph owns, the optimizers step with `capturable=True`, and only methods whose update
keeps no state between updates in new tensors (`Combiner.graph_capturable`) can be captured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace

import torch

from mtrl.replay import Batch

Metrics = dict[str, torch.Tensor]


class GraphedUpdate:
    """`update(batch)` run eagerly for the first `warmup` calls (on a side stream, as capture needs: lazy
    allocations such as the optimizers' state happen there), then captured at the next call and replayed from
    then on. Each call still trains on its own batch exactly once."""

    def __init__(self, update: Callable[[Batch], Metrics], warmup: int = 3):
        self.update, self.warmup = update, warmup
        self.calls = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static_batch: Batch | None = None
        self.static_metrics: Metrics = {}

    def __call__(self, batch: Batch) -> Metrics:
        self.calls += 1
        if self.calls <= self.warmup:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                metrics = self.update(batch)
            torch.cuda.current_stream().wait_stream(side)
            return metrics
        if self.graph is None:
            self.static_batch = replace(batch, **{f.name: getattr(batch, f.name).clone() for f in fields(batch)})
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):  # records the kernels; nothing runs until replay
                self.static_metrics = self.update(self.static_batch)
        for f in fields(batch):
            getattr(self.static_batch, f.name).copy_(getattr(batch, f.name))
        self.graph.replay()
        return {name: value.clone() for name, value in self.static_metrics.items()}
