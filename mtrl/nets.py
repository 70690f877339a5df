"""Multi-task networks: a shared encoder and task heads, batched so that no Python loop runs over tasks.

Activations have the layout `[M, K, b, features]`: M ensemble members (2 for the twin critic, 1 for the
actor), K tasks, b samples per task. A shared layer applies one weight per member to all K*b rows; a task
layer applies weight `[m, k]` to task k's b rows only, as one batched matmul. Task k's output therefore
depends on task k's head alone, and rows of different tasks never interact, which the combiners rely on.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def _xavier_(weight: torch.Tensor) -> None:
    """Xavier-uniform init of a `[..., in, out]` weight stack, each `[in, out]` slice on its own."""
    fan_in, fan_out = weight.shape[-2:]
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    nn.init.uniform_(weight, -bound, bound)


@dataclass
class LayerTap:
    """A shared layer's input and output in one training forward: what its per-task gradients are made of."""

    layer: nn.Module
    input: torch.Tensor
    output: torch.Tensor


@dataclass
class ForwardRecord:
    """What the multi-task backward needs of one training forward (see `mtrl.mtl_backward`)."""

    representation: torch.Tensor  # z [M, K, b, d]: the encoder's output, the heads' input
    taps: list[LayerTap]  # every shared layer with parameters, in forward order


def _tapped(layer: nn.Module, x: torch.Tensor, y: torch.Tensor, taps: list[LayerTap] | None) -> torch.Tensor:
    """Add a shared layer's input and output to the record of a training forward, if one is being kept."""
    if taps is not None:
        taps.append(LayerTap(layer, x, y))
    return y


class SharedLinear(nn.Module):
    """One affine map per ensemble member, shared by all tasks: `[M, K, b, in] -> [M, K, b, out]`."""

    def __init__(self, members: int, in_dim: int, out_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim))
        self.bias = nn.Parameter(torch.zeros(members, 1, out_dim))
        _xavier_(self.weight)

    def forward(self, x: torch.Tensor, taps: list[LayerTap] | None = None) -> torch.Tensor:
        m, k, b, _ = x.shape
        y = torch.baddbmm(self.bias, x.reshape(m, k * b, -1), self.weight).view(m, k, b, -1)
        return _tapped(self, x, y, taps)


class TaskLinear(nn.Module):
    """One affine map per (member, task): task k's rows see only weight `[m, k]`."""

    def __init__(self, members: int, num_tasks: int, in_dim: int, out_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, num_tasks, in_dim, out_dim))
        self.bias = nn.Parameter(torch.zeros(members, num_tasks, 1, out_dim))
        _xavier_(self.weight)

    def forward(self, x: torch.Tensor, taps: list[LayerTap] | None = None) -> torch.Tensor:
        m, k, b, _ = x.shape
        w, bias = self.weight.flatten(0, 1), self.bias.flatten(0, 1)
        return torch.baddbmm(bias, x.reshape(m * k, b, -1), w).view(m, k, b, -1)


class SharedLayerNorm(nn.Module):
    """Layer normalisation of each row, with one gain and bias per ensemble member shared by all tasks."""

    def __init__(self, members: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(members, 1, 1, dim))
        self.bias = nn.Parameter(torch.zeros(members, 1, 1, dim))

    def forward(self, x: torch.Tensor, taps: list[LayerTap] | None = None) -> torch.Tensor:
        y = torch.addcmul(self.bias, F.layer_norm(x, x.shape[-1:]), self.weight)
        return _tapped(self, x, y, taps)


class TaskLayerNorm(nn.Module):
    """Layer normalisation of each row, with one gain and bias per (member, task)."""

    def __init__(self, members: int, num_tasks: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(members, num_tasks, 1, dim))
        self.bias = nn.Parameter(torch.zeros(members, num_tasks, 1, dim))

    def forward(self, x: torch.Tensor, taps: list[LayerTap] | None = None) -> torch.Tensor:
        return torch.addcmul(self.bias, F.layer_norm(x, x.shape[-1:]), self.weight)


class ReLU(nn.Module):
    """`F.relu`, taking (and ignoring) the taps like every layer here."""

    def forward(self, x: torch.Tensor, taps: list[LayerTap] | None = None) -> torch.Tensor:
        return F.relu(x)


class ResidualBlock(nn.Module):
    """`x + LN(Linear(ReLU(LN(Linear(x)))))`: the residual block of BRO's and BRC's critics (normalised after
    each linear layer, nothing after the sum)."""

    def __init__(self, factory: "_Factory", dim: int):
        super().__init__()
        self.linear1, self.norm1 = factory.linear(dim, dim), factory.norm(dim)
        self.linear2, self.norm2 = factory.linear(dim, dim), factory.norm(dim)

    def forward(self, x: torch.Tensor, taps: list[LayerTap] | None = None) -> torch.Tensor:
        h = F.relu(self.norm1(self.linear1(x, taps), taps))
        return x + self.norm2(self.linear2(h, taps), taps)


class MultiTaskMLP(nn.Module):
    """An MLP of `hidden_layers` hidden layers whose last `head_layers` layers (counted from the output, the
    output layer included) are task-specific.

    A hidden layer is `Linear -> ReLU`, with `layer_norm` `Linear -> LayerNorm -> ReLU`; with `residual`, the
    first hidden layer is `Linear -> LayerNorm -> ReLU` and every further one a residual block
    `x + LN(Linear(ReLU(LN(Linear(x)))))` (the BRO / BRC critic). Every layer acts on each row alone, so rows
    of different tasks never interact and per-task gradients can be grouped from one backward pass.
    `encoder` maps inputs to the shared representation z; `heads` map z to outputs, task by task. With
    `head_layers == 0` the whole network is shared (z is the output); with `head_layers == hidden_layers + 1`
    every task has its own network (the encoder is empty and z is the input).
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int, hidden_layers: int, head_layers: int,
                 num_tasks: int, members: int = 1, layer_norm: bool = False, residual: bool = False):
        super().__init__()
        num_layers = hidden_layers + 1
        if not 0 <= head_layers <= num_layers:
            raise ValueError(f"head_layers must be in [0, {num_layers}], got {head_layers}")
        num_shared = num_layers - head_layers
        layers: list[list[nn.Module]] = []
        for i in range(num_layers):
            factory = _Factory(members, num_tasks, task_specific=i >= num_shared)
            if i == hidden_layers:
                layers.append([factory.linear(hidden_dim if i else in_dim, out_dim)])
            elif residual and i > 0:
                layers.append([ResidualBlock(factory, hidden_dim)])
            else:
                norm = [factory.norm(hidden_dim)] if layer_norm or residual else []
                layers.append([factory.linear(hidden_dim if i else in_dim, hidden_dim), *norm, ReLU()])
        self.encoder = nn.Sequential(*[m for layer in layers[:num_shared] for m in layer])
        self.heads = nn.Sequential(*[m for layer in layers[num_shared:] for m in layer])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _run(self.heads, _run(self.encoder, x))

    def forward_recorded(self, x: torch.Tensor) -> tuple[torch.Tensor, ForwardRecord]:
        """The output, and the record of this forward that `mtrl.mtl_backward` turns into gradients."""
        taps: list[LayerTap] = []
        z = _run(self.encoder, x, taps)
        return _run(self.heads, z), ForwardRecord(z, taps)

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    def task_parameters(self) -> list[nn.Parameter]:
        return list(self.heads.parameters())


def _run(layers: nn.Sequential, x: torch.Tensor, taps: list[LayerTap] | None = None) -> torch.Tensor:
    for layer in layers:
        x = layer(x, taps)
    return x


class _Factory:
    """Builds the layers at one depth of a network: shared by all tasks, or with parameters per task."""

    def __init__(self, members: int, num_tasks: int, task_specific: bool):
        self.members, self.num_tasks, self.task_specific = members, num_tasks, task_specific

    def linear(self, in_dim: int, out_dim: int) -> nn.Module:
        if self.task_specific:
            return TaskLinear(self.members, self.num_tasks, in_dim, out_dim)
        return SharedLinear(self.members, in_dim, out_dim)

    def norm(self, dim: int) -> nn.Module:
        if self.task_specific:
            return TaskLayerNorm(self.members, self.num_tasks, dim)
        return SharedLayerNorm(self.members, dim)


class Actor(nn.Module):
    """Tanh-squashed Gaussian policy; the log-std is squashed into [log_std_min, log_std_max]."""

    def __init__(self, obs_dim: int, action_dim: int, num_tasks: int, hidden_dim: int, hidden_layers: int,
                 head_layers: int, log_std_min: float = -20.0, log_std_max: float = 2.0, layer_norm: bool = False,
                 residual: bool = False):
        super().__init__()
        self.net = MultiTaskMLP(obs_dim, 2 * action_dim, hidden_dim, hidden_layers, head_layers, num_tasks,
                                layer_norm=layer_norm, residual=residual)
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`obs [K, b, obs_dim]` -> mean and log-std of the pre-squash Gaussian, each `[K, b, act_dim]`."""
        return self._mean_log_std(self.net(obs.unsqueeze(0)))

    def _mean_log_std(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = out.squeeze(0).chunk(2, dim=-1)
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (torch.tanh(log_std) + 1)
        return mean, log_std

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised action in (-1, 1) and its log-probability `[K, b]`."""
        return self._sample(*self(obs))

    def sample_recorded(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, ForwardRecord]:
        """`sample`, plus the record of the network's forward for the multi-task backward."""
        out, record = self.net.forward_recorded(obs.unsqueeze(0))
        return *self._sample(*self._mean_log_std(out)), record

    @staticmethod
    def _sample(mean: torch.Tensor, log_std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        noise = torch.randn_like(mean)
        pre_tanh = mean + noise * log_std.exp()
        action = torch.tanh(pre_tanh)
        # log N(pre_tanh) - log|d tanh/dx|, with log(1 - tanh^2 x) = 2 (log 2 - x - softplus(-2x)) for stability
        log_prob = (-0.5 * noise.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = log_prob - (2 * (math.log(2) - pre_tanh - F.softplus(-2 * pre_tanh))).sum(-1)
        return action, log_prob

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self(obs)[0])


class TwinCritic(nn.Module):
    """Two critics as one ensemble of two members: `(obs, action) -> [2, K, b, outputs]`, the raw outputs
    that `mtrl.q_values` reads as Q-values (1 output) or as a distribution over values (logits)."""

    def __init__(self, obs_dim: int, action_dim: int, num_tasks: int, hidden_dim: int, hidden_layers: int,
                 head_layers: int, outputs: int = 1, layer_norm: bool = False, residual: bool = False):
        super().__init__()
        self.net = MultiTaskMLP(obs_dim + action_dim, outputs, hidden_dim, hidden_layers, head_layers, num_tasks,
                                members=2, layer_norm=layer_norm, residual=residual)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(self._input(obs, action))

    def forward_recorded(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, ForwardRecord]:
        """`forward`, plus the record of the network's forward for the multi-task backward."""
        return self.net.forward_recorded(self._input(obs, action))

    @staticmethod
    def _input(obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return torch.cat([obs, action], dim=-1).unsqueeze(0).expand(2, -1, -1, -1)


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Within the block, forwards through `module` build no gradient path to its parameters."""
    module.requires_grad_(False)
    try:
        yield
    finally:
        module.requires_grad_(True)
