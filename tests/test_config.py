"""Config keys added with the network options, values YAML reads loosely, and presets that load and agree."""

from pathlib import Path

import pytest

from mtrl.config import ConfigError, from_dict, load_config

ROOT = Path(__file__).resolve().parents[1]


def test_net_keys_set_both_networks_and_each_can_differ():
    cfg = load_config(None, ["net.hidden_dim=64", "net.critic.hidden_dim=128", "net.layer_norm=true"])
    assert (cfg.net.actor.hidden_dim, cfg.net.critic.hidden_dim) == (64, 128)
    assert cfg.net.actor.layer_norm and cfg.net.critic.layer_norm


def test_a_config_saved_with_one_network_shape_still_loads():
    cfg = from_dict({"method": "mtsac", "net": {"hidden_dim": 8, "hidden_layers": 1, "head_layers": 2}})
    assert cfg.net.actor.hidden_dim == cfg.net.critic.hidden_dim == 8
    assert cfg.net.critic.head_layers == 2


def test_exponents_without_a_dot_are_floats():
    assert load_config(None, ["sac.alpha_lr=1e-3"]).sac.alpha_lr == 0.001


@pytest.mark.parametrize("override, message", [
    ("net.critic.head_layers=5", "'net.critic.head_layers' must be at most net.critic.hidden_layers + 1 = 4"),
    ("sac.critic_loss=quantile", "'sac.critic_loss' got 'quantile'; accepted: mse, categorical"),
    ("sac.v_min=20", "'sac.v_min' must be below sac.v_max = 10.0, got 20"),
    ("train.updates_per_step=0", "'train.updates_per_step' must be > 0"),
    ("sac.actor_update_every=0", "'sac.actor_update_every' must be > 0"),
    ("methods.cagrad.iterations=0", "'methods.cagrad.iterations' must be > 0"),
    ("sac.batch_size=1285", "'sac.batch_size' must be a multiple of the number of tasks (10)"),
    ("env.workers=11", "'env.workers' must be at most the number of tasks (10)"),
])
def test_bad_values_get_one_line_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        load_config(None, [override])


def test_sub_batches_must_divide_each_tasks_share_of_the_batch():
    assert load_config(None, ["sac.batch_size=80"], method="ntkmtl_sr").sac.batch_size == 80  # 8 = 2 x 4
    with pytest.raises(ConfigError, match=r"'methods.ntkmtl_sr.subbatches' must divide .*= 6\), got 4"):
        load_config(None, ["sac.batch_size=60"], method="ntkmtl_sr")
    assert load_config(None, ["sac.batch_size=60"], method="mtsac").sac.batch_size == 60  # no sub-batches


def test_evaluation_copies_need_goals_drawn_at_reset_and_enough_episodes():
    assert load_config(None, ["env.protocol=mt10", "env.eval_copies=5"]).env.eval_copies == 5
    with pytest.raises(ConfigError, match="'env.eval_copies' must be 1 under protocol mt10-fixed"):
        load_config(None, ["env.protocol=mt10-fixed", "env.eval_copies=2"])
    with pytest.raises(ConfigError, match="'env.eval_copies' must be at most the episodes per task \\(4\\), got 5"):
        load_config(None, ["env.protocol=mt10", "env.eval_episodes=4", "env.eval_copies=5"])


@pytest.mark.parametrize("preset", sorted(p.name for p in (ROOT / "configs").glob("*.yaml")))
def test_every_preset_loads_for_every_method_and_its_agent_updates(preset):
    """A preset is what users run first: each must validate with every --method, and build an agent that
    updates (networks shrunk; the update is compiled only in the test of compilation)."""
    import torch

    from mtrl.apps.bench import _filled_replay
    from mtrl.combiners import COMBINERS
    from mtrl.envs import NUM_TASKS, STATE_DIM
    from mtrl.sac import MTSAC

    for method in COMBINERS:
        load_config(ROOT / "configs" / preset, method=method)
    cfg = load_config(ROOT / "configs" / preset, ["net.hidden_dim=16", "sac.compile=false", "device=cpu"])
    agent = MTSAC(cfg, STATE_DIM + NUM_TASKS, 4, NUM_TASKS, torch.device("cpu"))
    metrics = agent.update(_filled_replay(torch.device("cpu"), 300).sample(4))
    assert torch.isfinite(metrics["loss/critic"]).all()


def test_the_mt10_presets_agree_on_each_methods_published_settings():
    """The authors' MT10 settings (CAGrad's c, FAMO's decay, FairGrad's alpha) are written out in every MT10
    preset, so each file reads on its own; they must not drift apart. The NTKMTL options chosen for RL losses
    are the same in every preset that takes them (the paper preset keeps the paper's rule)."""
    presets = {name: load_config(ROOT / "configs" / name)
               for name in ("mt10.yaml", "mt10_cpu.yaml", "mt10_cpu_official.yaml", "mt10_gpu.yaml")}
    published = {name: (cfg.methods.cagrad, cfg.methods.famo, cfg.methods.fairgrad) for name, cfg in presets.items()}
    assert len({repr(settings) for settings in published.values()}) == 1, published
    chosen = {name: (cfg.methods.ntkmtl, cfg.methods.ntkmtl_sr) for name, cfg in presets.items() if name != "mt10.yaml"}
    assert len({repr(settings) for settings in chosen.values()}) == 1, chosen
    assert presets["mt10.yaml"].methods.ntkmtl == load_config(None).methods.ntkmtl  # the paper's rule
