"""The evaluator checked against reference policies: scripted experts succeed, random actions do not."""

from mtrl.envs import TASK_NAMES
from mtrl.evaluation import ExpertPolicy, RandomPolicy, evaluate


def test_scripted_experts_score_high(official_env):
    result = evaluate(ExpertPolicy(), official_env, episodes=3)
    assert list(result.success) == list(TASK_NAMES)
    assert result.success_mean >= 0.9, result.to_markdown()
    assert result.protocol == "mt10" and result.episodes == 3


def test_random_actions_score_near_zero(fixed_env):
    result = evaluate(RandomPolicy(action_dim=4, seed=0), fixed_env, episodes=2)
    assert result.success_mean <= 0.2, result.to_markdown()


def test_reports_carry_their_labels(fixed_env, tmp_path):
    result = evaluate(RandomPolicy(action_dim=4, seed=1), fixed_env, episodes=1, labels={"method": "x"})
    json_path, md_path = result.save(tmp_path)
    text = md_path.read_text()
    assert "protocol mt10-fixed" in text and "method x" in text and "| reach-v3 |" in text
    assert '"success_mean"' in json_path.read_text()
