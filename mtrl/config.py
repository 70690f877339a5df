"""Typed run configuration: dataclasses loaded from YAML, overridden from the command line, validated.

Every field has one home and one type. A YAML file or a `section.field=value` override that names a key
that does not exist, or gives a value of the wrong type or out of range, raises `ConfigError` with one line
that says what was wrong and what is accepted.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mtrl.combiners import COMBINERS
from mtrl.combiners.cagrad import CAGradOptions
from mtrl.combiners.fairgrad import FairGradOptions
from mtrl.combiners.famo import FAMOOptions
from mtrl.combiners.nashmtl import NashMTLOptions
from mtrl.combiners.ntkmtl import NTKMTLOptions
from mtrl.combiners.ntkmtl_sr import NTKMTLSROptions
from mtrl.envs import NUM_TASKS, PROTOCOLS
from mtrl.errors import ConfigError
from mtrl.runtime import known_device


@dataclass
class EnvConfig:
    protocol: str = "mt10"  # "mt10" (Meta-World 3 official) or "mt10-fixed" (the classic table's setting)
    reward_version: str = "v2"  # Meta-World reward functions: "v2" (default) or "v1"
    # who steps the ten training envs: "sync" (Gymnasium, this process), "async" (Gymnasium, a process per
    # task) or "workers" (the project's collector: `workers` processes sharing memory)
    vector: str = "sync"
    workers: int = 2
    eval_episodes: int = 0  # episodes per task in each evaluation; 0 = the protocol's own number
    # copies of the ten-task env that an evaluation steps side by side, each drawing its own goals and running
    # a share of the episodes (with env.vector=workers, each copy has its own worker processes); for protocols
    # that draw a new goal at each reset
    eval_copies: int = 1

    def episodes_per_evaluation(self) -> int:
        """Episodes per task in each evaluation: `eval_episodes`, or the protocol's own number where it is 0."""
        return self.eval_episodes or PROTOCOLS[self.protocol].eval_episodes


@dataclass
class NetConfig:
    """The shape of one network, the actor's or the critic's."""

    hidden_dim: int = 400
    hidden_layers: int = 3
    # Layers, counted from the output (the output layer included), that are task-specific. 1 = one output
    # layer per task on a shared encoder; 0 = one fully shared network (classic MTSAC); hidden_layers + 1 = one
    # network per task.
    head_layers: int = 1
    layer_norm: bool = False  # LayerNorm after each hidden linear layer, before its ReLU
    # hidden layers after the first are residual blocks x + LN(W2 ReLU(LN(W1 x))) (BRO, BRC); implies layer_norm
    residual: bool = False


@dataclass
class NetsConfig:
    """`net.actor` and `net.critic`; `net.<key>=<value>` (e.g. `net.hidden_dim=256`) sets a key for both."""

    actor: NetConfig = field(default_factory=NetConfig)
    critic: NetConfig = field(default_factory=NetConfig)


@dataclass
class SACConfig:
    batch_size: int = 1280  # transitions per update over all tasks; each task gets batch_size / num_tasks
    gamma: float = 0.99
    tau: float = 0.005
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    init_temperature: float = 1.0
    target_entropy: float = -4.0  # -|A| for Meta-World's 4-dim actions
    log_std_min: float = -20.0
    log_std_max: float = 2.0
    # the critic: "mse" (a scalar Q-value, squared error) or "categorical" (a distribution over `bins` values
    # evenly spaced on [v_min, v_max], cross-entropy to the projected soft Bellman target, as BRC)
    critic_loss: str = "mse"
    bins: int = 101
    v_min: float = -10.0
    v_max: float = 10.0
    # divide each task's rewards by a running estimate of its return scale (BRC), so that its soft returns stay
    # within about [-v_max, v_max] whatever the task's reward scale
    normalise_rewards: bool = False
    actor_grad_clip: float = 0.0  # scale the actor's gradient down to this global norm if it is larger; 0 = off
    critic_grad_clip: float = 0.0  # the same for the critic
    # step the actor on every n-th update only, the critic and the temperatures on every one (TD3's delayed policy
    # update; CrossQ takes 3), a cheaper update per environment step (BENCHMARKS.md, RESULTS.md)
    actor_update_every: int = 1
    # compile the update's forward-and-loss functions with torch.compile (on CUDA with CUDA graphs). Methods
    # that read the record of the forward (every one but mtsac) keep their recorded forwards eager
    compile: bool = False
    # capture the whole update in one CUDA graph and replay it (CUDA only; methods whose rule needs no host round
    # trip and keeps no state in newly allocated tensors: mtsac)
    cuda_graph: bool = False


@dataclass
class TrainConfig:
    steps: int = 2_000_000  # one step = one transition in each of the tasks' envs + one update
    warmup_steps: int = 1500  # uniformly random actions and no updates before this step
    updates_per_step: int = 1  # SAC updates after each environment step, each on a freshly sampled batch
    # update while the collector's workers step the envs (needs env.vector=workers). The actions are chosen
    # before the update, as in the sequential loop, but the update's batch cannot hold the transition still
    # being stepped: it sees the replay one step late
    overlap: bool = False
    buffer_capacity: int = 1_000_000  # transitions over all tasks
    eval_every: int = 10_000
    checkpoint_every: int = 50_000
    keep_checkpoints: int = 3
    checkpoint_replay: bool = True  # store the replay buffer in checkpoints: a resumed run keeps its data
    log_every: int = 1000
    # stop when this many updates in a row had a non-finite loss or gradient (checked every log_every steps;
    # such updates are skipped, so parameters and checkpoints stay as they were)
    max_nonfinite_in_a_row: int = 100
    threads: int = 0  # torch intra-op threads on the CPU; 0 = leave torch's default


@dataclass
class MethodsConfig:
    """Options of each method (the dataclass beside each combiner); only the selected method's are read."""

    ntkmtl: NTKMTLOptions = field(default_factory=NTKMTLOptions)
    ntkmtl_sr: NTKMTLSROptions = field(default_factory=NTKMTLSROptions)
    cagrad: CAGradOptions = field(default_factory=CAGradOptions)
    nashmtl: NashMTLOptions = field(default_factory=NashMTLOptions)
    fairgrad: FairGradOptions = field(default_factory=FairGradOptions)
    famo: FAMOOptions = field(default_factory=FAMOOptions)


@dataclass
class Config:
    method: str = "mtsac"
    label: str = ""  # a name for this setting (e.g. an ablation's variant); results tables label rows with it
    seed: int = 1
    device: str = "auto"  # "auto", "cpu" or "cuda" (also "cuda:N")
    env: EnvConfig = field(default_factory=EnvConfig)
    net: NetsConfig = field(default_factory=NetsConfig)
    sac: SACConfig = field(default_factory=SACConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    methods: MethodsConfig = field(default_factory=MethodsConfig)

    def method_options(self) -> Any:
        """The selected method's options (its `methods.<method>` section), or None if it has none."""
        return getattr(self.methods, self.method, None)


# Closed sets of accepted values (methods are checked against the combiner registry).
CHOICES: dict[str, tuple[str, ...]] = {
    "env.protocol": ("mt10", "mt10-fixed"),
    "env.reward_version": ("v2", "v1"),
    "env.vector": ("sync", "async", "workers"),
    "sac.critic_loss": ("mse", "categorical"),
}
POSITIVE = {
    "net.actor.hidden_dim", "net.actor.hidden_layers", "net.critic.hidden_dim", "net.critic.hidden_layers",
    "sac.batch_size", "train.steps", "train.buffer_capacity", "env.workers", "env.eval_copies",
    "train.eval_every", "train.checkpoint_every", "train.keep_checkpoints", "train.log_every",
    "train.max_nonfinite_in_a_row",
    "sac.actor_lr", "sac.critic_lr", "sac.alpha_lr", "sac.init_temperature", "train.updates_per_step",
    "sac.actor_update_every",
}
NON_NEGATIVE = {"net.actor.head_layers", "net.critic.head_layers", "train.warmup_steps", "sac.actor_grad_clip",
                "sac.critic_grad_clip", "env.eval_episodes", "train.threads", "seed"}
UNIT_INTERVAL = {"sac.gamma", "sac.tau"}


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _closest(name: str, options: list[str]) -> str:
    match = difflib.get_close_matches(name, options, n=1)
    return f" (did you mean '{match[0]}'?)" if match else ""


def _coerce(key: str, value: Any, kind: Any) -> Any:
    """Return `value` as `kind`, accepting ints for floats and nothing else loosely."""
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads exponents without a dot, such as 1e-3, as strings
            try:
                return float(value)
            except ValueError:
                pass
    elif kind is str:
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
    raise ConfigError(f"config key '{key}' expects {kind.__name__}, got {value!r}")


def _apply(target: Any, key: str, value: Any) -> None:
    """Set dotted `key` on the dataclass tree `target`, checking the key exists and the type fits."""
    obj, parts = target, key.split(".")
    if isinstance(target, Config) and parts[0] == "net" and len(parts) == 2 and parts[1] in _field_types(NetConfig):
        for role in ("actor", "critic"):  # `net.<key>`: the same shape for both networks
            _apply(target, f"net.{role}.{parts[1]}", value)
        return
    for depth, part in enumerate(parts):
        hints = _field_types(type(obj))
        prefix = ".".join(parts[:depth])
        if part not in hints:
            options = [f"{prefix}.{n}" if prefix else n for n in hints]
            if isinstance(target, Config) and prefix == "net":  # the `net.<key>` shortcut for both networks
                options += [f"net.{n}" for n in _field_types(NetConfig)]
            raise ConfigError(
                f"unknown config key '{key}'{_closest('.'.join(parts[: depth + 1]), options)}; "
                f"accepted here: {', '.join(options)}"
            )
        kind = hints[part]
        if dataclasses.is_dataclass(kind):
            if depth == len(parts) - 1:
                if not isinstance(value, dict):
                    raise ConfigError(f"config key '{key}' is a section; give it a mapping, got {value!r}")
                for sub, sub_value in value.items():
                    _apply(target, f"{key}.{sub}", sub_value)
                return
            obj = getattr(obj, part)
        elif depth < len(parts) - 1:
            raise ConfigError(f"config key '{'.'.join(parts[: depth + 1])}' is a value, not a section")
        else:
            setattr(obj, part, _coerce(key, value, kind))


def validate(cfg: Config) -> Config:
    """Check ranges and choices that types alone don't capture; each method's options check their own."""
    if cfg.method not in COMBINERS:
        raise ConfigError(f"unknown method '{cfg.method}'{_closest(cfg.method, list(COMBINERS))}; "
                          f"accepted: {', '.join(sorted(COMBINERS))}")
    flat = flatten(cfg)
    for key, choices in CHOICES.items():
        if flat[key] not in choices:
            raise ConfigError(f"config key '{key}' got {flat[key]!r}; accepted: {', '.join(choices)}")
    for key in POSITIVE:
        if not flat[key] > 0:
            raise ConfigError(f"config key '{key}' must be > 0, got {flat[key]!r}")
    for key in NON_NEGATIVE:
        if not flat[key] >= 0:
            raise ConfigError(f"config key '{key}' must be >= 0, got {flat[key]!r}")
    for key in UNIT_INTERVAL:
        if not 0.0 <= flat[key] <= 1.0:
            raise ConfigError(f"config key '{key}' must be in [0, 1], got {flat[key]!r}")
    for options in vars(cfg.methods).values():
        options.validate()
    for role, net in (("actor", cfg.net.actor), ("critic", cfg.net.critic)):
        if net.head_layers > net.hidden_layers + 1:
            raise ConfigError(f"config key 'net.{role}.head_layers' must be at most net.{role}.hidden_layers + 1 = "
                              f"{net.hidden_layers + 1}, got {net.head_layers}")
    if cfg.sac.bins < 2:
        raise ConfigError(f"config key 'sac.bins' must be at least 2, got {cfg.sac.bins}")
    if cfg.sac.v_min >= cfg.sac.v_max:
        raise ConfigError(f"config key 'sac.v_min' must be below sac.v_max = {cfg.sac.v_max}, got {cfg.sac.v_min}")
    if cfg.sac.log_std_min >= cfg.sac.log_std_max:
        raise ConfigError(f"config key 'sac.log_std_min' must be below sac.log_std_max = {cfg.sac.log_std_max}, "
                          f"got {cfg.sac.log_std_min}")
    if cfg.sac.batch_size % NUM_TASKS:
        raise ConfigError(f"config key 'sac.batch_size' must be a multiple of the number of tasks ({NUM_TASKS}): "
                          f"every batch holds the same number of each task's transitions; got {cfg.sac.batch_size}")
    subbatches, per_task = getattr(cfg.method_options(), "subbatches", 1), cfg.sac.batch_size // NUM_TASKS
    if per_task % subbatches:
        raise ConfigError(f"config key 'methods.{cfg.method}.subbatches' must divide each task's share of the batch "
                          f"(sac.batch_size / {NUM_TASKS} = {per_task}), got {subbatches}")
    if cfg.env.workers > NUM_TASKS:
        raise ConfigError(f"config key 'env.workers' must be at most the number of tasks ({NUM_TASKS}), each worker "
                          f"stepping one or more tasks; got {cfg.env.workers}")
    if cfg.sac.cuda_graph and not COMBINERS[cfg.method].graph_capturable:
        capturable = ", ".join(m for m, c in COMBINERS.items() if c.graph_capturable)
        raise ConfigError(f"config key 'sac.cuda_graph' supports the methods whose rule can be recorded in a CUDA "
                          f"graph ({capturable}: no host round trip, no state in new tensors), got method "
                          f"'{cfg.method}'")
    if cfg.sac.cuda_graph and cfg.device == "cpu":
        raise ConfigError("config key 'sac.cuda_graph' needs a CUDA device, got device=cpu")
    if cfg.train.overlap and cfg.env.vector != "workers":
        raise ConfigError(f"config key 'train.overlap' needs env.vector=workers (the collector that steps the envs "
                          f"in its own processes), got env.vector={cfg.env.vector}")
    protocol = PROTOCOLS[cfg.env.protocol]
    if cfg.env.eval_copies > 1 and protocol.fixed_goals:
        raise ConfigError(f"config key 'env.eval_copies' must be 1 under protocol {protocol.name}: its goals are "
                          f"fixed for the run, so every copy would repeat the same episodes")
    if cfg.env.eval_copies > cfg.env.episodes_per_evaluation():
        raise ConfigError(f"config key 'env.eval_copies' must be at most the episodes per task "
                          f"({cfg.env.episodes_per_evaluation()}), got {cfg.env.eval_copies}")
    if not known_device(cfg.device):
        raise ConfigError(f"unknown device {cfg.device!r}; accepted: auto, cpu, cuda, cuda:N")
    return cfg


def parse_override(text: str) -> tuple[str, Any]:
    """Split `section.key=value`; the value is read as YAML so `1e-3`, `true` and `[1, 2]` mean what they say."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {text!r} is not of the form section.key=value (e.g. sac.batch_size=1280)")
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, **fields: Any) -> Config:
    """Build a Config: defaults, then the YAML file at `path`, then `fields` (top-level), then `overrides`."""
    cfg = Config()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file '{path}' does not exist")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"config file '{path}' is not valid YAML: {str(error).splitlines()[0]}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file '{path}' must hold a mapping of sections, got {type(data).__name__}")
        for key, value in data.items():
            _apply(cfg, str(key), value)
    return with_overrides(cfg, overrides, **fields)


def with_overrides(cfg: Config, overrides: list[str] | None = None, **fields: Any) -> Config:
    """A validated copy of `cfg` with `fields` (top-level) and then `overrides` applied."""
    cfg = copy.deepcopy(cfg)
    for key, value in fields.items():
        if value is not None:
            _apply(cfg, key, value)
    for text in overrides or []:
        _apply(cfg, *parse_override(text))
    return validate(cfg)


def flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys to values, for validation, logging and comparison of configs."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out.update(flatten(value, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = value
    return out


def to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a Config saved with `to_dict` (e.g. from a checkpoint or a run's config.yaml)."""
    cfg = Config()
    for key, value in data.items():
        _apply(cfg, key, value)
    return validate(cfg)


def save_config(cfg: Config, path: Path) -> None:
    path.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
