"""Each combiner against the defining property of its method, on small hand-built or random inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from mtrl.combiners import COMBINERS, EqualWeighting, make_combiner
from mtrl.combiners.aligned_mtl import AlignedMTL
from mtrl.combiners.cagrad import CAGrad, CAGradOptions, cagrad_objective
from mtrl.combiners.fairgrad import FairGrad, FairGradOptions
from mtrl.combiners.famo import FAMO, FAMOOptions
from mtrl.combiners.nashmtl import NashMTL, NashMTLOptions
from mtrl.combiners.ntkmtl import NTKMTL, NTKMTLOptions, ntk_weights, smoothed_lambdas
from mtrl.combiners.ntkmtl_sr import NTKMTLSR, NTKMTLSROptions
from mtrl.combiners.pcgrad import PCGrad
from mtrl.combiners.solvers import alpha_fair_weights, cagrad_dual, normalised_gram
from mtrl.mtl_backward import multitask_backward, task_gradient_matrix
from mtrl.nets import MultiTaskMLP

K, B, IN = 4, 8, 6
GRADIENT_METHODS = [NTKMTL, PCGrad, CAGrad, NashMTL, FairGrad, AlignedMTL]


SHAPES = {"plain": {}, "layer_norm": {"layer_norm": True}, "residual": {"residual": True}}


def make_net(members: int = 2, head_layers: int = 1, shape: str = "plain") -> MultiTaskMLP:
    torch.manual_seed(0)
    net = MultiTaskMLP(IN, 3, hidden_dim=16, hidden_layers=2, head_layers=head_layers, num_tasks=K,
                       members=members, **SHAPES[shape]).double()
    with torch.no_grad():  # layer norms start at gain 1 and bias 0; move them so their gradients are general
        for name, param in net.named_parameters():
            if "norm" in name:
                param.add_(0.3 * torch.randn_like(param))
    return net


def per_row_losses(out: torch.Tensor) -> torch.Tensor:
    """A loss per (task, row) of the net's output, summed over ensemble members; task losses are its mean
    over rows."""
    scale = torch.tensor([1.0, 10.0, 0.1, 3.0], dtype=out.dtype).view(1, K, 1)
    return (scale * out.pow(2).sum(-1)).sum(0)  # [K, b]


def task_losses(net, x):
    return per_row_losses(net(x)).mean(dim=1)


def recorded_losses(net, x, factor=1.0):
    """Task losses of a training forward, and its record."""
    out, record = net.forward_recorded(x)
    return per_row_losses(out).mean(dim=1) * factor, record


def backward(combiner, net, x, factor=1.0, with_record=True):
    """One multi-task backward pass of `combiner` on the task losses of `net` at `x` (times `factor`);
    `with_record=False` takes the generic route for networks that keep no record."""
    losses, record = recorded_losses(net, x, factor)
    return multitask_backward(losses, net, record if with_record else None, combiner)


def gram_of(g):
    return g @ g.T


def separate_grads(net, x, subbatches=1):
    """Reference: one autograd call per (task, sub-batch) loss."""
    params = net.shared_parameters()
    rows = per_row_losses(net(x))
    out = []
    for k in range(K):
        for chunk in rows[k].chunk(subbatches):
            grads = torch.autograd.grad(chunk.mean(), params, retain_graph=True)
            out.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(out).view(K, subbatches, -1)


# ----------------------------------------------------------------------------- per-task gradient machinery
@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("subbatches", [1, 4])
def test_grouped_task_grads_match_separate_backward_passes(subbatches, shape):
    net = make_net(shape=shape)
    x = torch.randn(2, K, B, IN, dtype=torch.double).expand(2, -1, -1, -1)
    expected = separate_grads(net, x, subbatches)
    losses, record = recorded_losses(net, x)
    grouped = task_gradient_matrix(losses, net, record, subbatches)
    torch.testing.assert_close(grouped, expected, rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("head_layers", [0, 1, 2])
def test_generic_fallback_matches_separate_backward_passes(head_layers, shape):
    """Without a record of the forward, the per-task gradients come from the vectorised fallback."""
    net = make_net(head_layers=head_layers, shape=shape)
    x = torch.randn(2, K, B, IN, dtype=torch.double)
    expected = separate_grads(net, x)
    batched = task_gradient_matrix(task_losses(net, x), net, None)
    torch.testing.assert_close(batched, expected, rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("method", sorted(COMBINERS))
@pytest.mark.parametrize("with_record", [True, False], ids=["grouped", "fallback"])
def test_heads_receive_their_own_plain_gradient(method, with_record, shape):
    """Whatever the method, route and network shape, a task head's gradient is that task's plain gradient."""
    net = make_net(shape=shape, head_layers=2)
    x = torch.randn(2, K, B, IN, dtype=torch.double)
    if method == "ntkmtl_sr" and not with_record:
        with pytest.raises(ValueError, match="ntkmtl_sr needs the record of the forward"):
            backward(make_combiner(method, K), net, x, with_record=with_record)
        return
    expected = torch.autograd.grad(task_losses(net, x).sum(), net.task_parameters())
    backward(make_combiner(method, K), net, x, with_record=with_record)
    for param, grad in zip(net.task_parameters(), expected):
        torch.testing.assert_close(param.grad, grad)
    for param in net.shared_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all()


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("method", ["pcgrad", "cagrad", "nashmtl", "fairgrad", "aligned_mtl", "ntkmtl", "famo"])
def test_fallback_route_gives_the_grouped_route_gradient(method, shape):
    """The same update whether the per-task gradients are grouped from one backward or taken generically."""
    net = make_net(shape=shape)
    x = torch.randn(2, K, B, IN, dtype=torch.double)
    grads = []
    for with_record in (True, False):
        torch.manual_seed(5)  # PCGrad's random visiting order
        backward(make_combiner(method, K), net, x, with_record=with_record)
        grads.append([p.grad.clone() for p in net.parameters()])
    for grouped, generic in zip(*grads):
        torch.testing.assert_close(grouped, generic)


def test_shared_update_is_weights_times_the_task_gradient_matrix():
    """For a Gram weighting, the shared parameters' gradient is `w @ G`, G from K separate passes."""
    net = make_net()
    x = torch.randn(2, K, B, IN, dtype=torch.double)
    grads = separate_grads(net, x).squeeze(1)
    stats = backward(AlignedMTL(K), net, x)
    written = torch.cat([p.grad.reshape(-1) for p in net.shared_parameters()])
    torch.testing.assert_close(written, stats["weight"] @ grads)


# --------------------------------------------------------------------------------------------------- NTKMTL
def test_ntkmtl_weights_and_direction_closed_form():
    torch.manual_seed(1)
    g = torch.randn(K, 30, dtype=torch.double) * torch.tensor([1.0, 30.0, 0.1, 5.0]).double()[:, None]
    norms2 = g.pow(2).sum(1)
    combiner = NTKMTL(K, NTKMTLOptions(p=0.5))
    weights, stats = combiner.weigh(norms2.view(K, 1, 1))
    torch.testing.assert_close(stats["lambda"], norms2)
    torch.testing.assert_close(weights, (norms2.mean() / norms2).sqrt(), rtol=1e-6, atol=0)
    unit_sum = (g / g.norm(dim=1, keepdim=True)).sum(0)
    direction = combiner.aggregate(g)
    cosine = direction @ unit_sum / (direction.norm() * unit_sum.norm())
    assert cosine > 1 - 1e-10


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_ntkmtl_layerwise_backward_equals_weights_times_the_task_gradient_matrix(shape):
    net = make_net(shape=shape)
    x = torch.randn(2, K, B, IN, dtype=torch.double)
    grads = separate_grads(net, x).squeeze(1)  # [K, P] from K separate backward passes
    stats = backward(NTKMTL(K), net, x)
    weights, expected_stats = NTKMTL(K).weigh(grads.pow(2).sum(1).view(K, 1, 1))
    torch.testing.assert_close(stats["lambda"], expected_stats["lambda"])
    torch.testing.assert_close(stats["weight"], weights)
    written = torch.cat([p.grad.reshape(-1) for p in net.shared_parameters()])
    torch.testing.assert_close(written, weights @ grads)


def test_ntkmtl_subbatch_lambda_is_the_largest_kernel_eigenvalue():
    torch.manual_seed(2)
    jac = torch.randn(K, 3, 20, dtype=torch.double)
    _, stats = NTKMTL(K, NTKMTLOptions(subbatches=3)).weigh(jac @ jac.transpose(1, 2))
    expected = torch.stack([torch.linalg.eigvalsh(j @ j.T).max() for j in jac])
    torch.testing.assert_close(stats["lambda"], expected)


def test_ntkmtl_p_exponent():
    lambdas = torch.tensor([1.0, 4.0, 16.0, 64.0], dtype=torch.double)
    weights, _ = NTKMTL(K, NTKMTLOptions(p=0.75)).weigh(lambdas.view(K, 1, 1))
    torch.testing.assert_close(weights, (lambdas.mean() / lambdas).pow(0.75))


@pytest.mark.parametrize("method", [NTKMTL, NTKMTLSR], ids=lambda c: c.name)
def test_lambda_floor_bounds_the_weight_of_a_task_without_gradient(method):
    lambdas = torch.tensor([1.0, 2.0, 1.0, 1e-10], dtype=torch.double)
    unbounded = ntk_weights(smoothed_lambdas(lambdas, method.Options(), {}), 0.5, 1e-12)
    assert unbounded[3] > 1e4
    options = method.Options(lambda_floor=0.01)
    weights = ntk_weights(smoothed_lambdas(lambdas, options, {}), 0.5, 1e-12)
    # floor^-p = 10 times an average task's weight (the mean rises a little with the floored lambda)
    assert 0.01**-0.5 <= weights[3] <= 1.01 * 0.01**-0.5
    torch.testing.assert_close(weights[:3], unbounded[:3], rtol=0.01, atol=0)  # the others keep about theirs


def test_lambda_average_smooths_a_jump():
    options, state = NTKMTLOptions(ema=0.9), {"lambda_average": None}
    steady = torch.ones(K, dtype=torch.double)
    for _ in range(5):
        smoothed_lambdas(steady, options, state)
    jump = steady.clone()
    jump[0] = 100.0
    used = smoothed_lambdas(jump, options, state)
    assert used[0] == pytest.approx(0.9 + 0.1 * 100) and torch.equal(used[1:], steady[1:])
    raw_ratio = ntk_weights(jump, 0.5, 1e-12)[0] / ntk_weights(steady, 0.5, 1e-12)[0]
    smooth_ratio = ntk_weights(used, 0.5, 1e-12)[0] / ntk_weights(steady, 0.5, 1e-12)[0]
    assert raw_ratio < smooth_ratio < 1  # the weight still falls, but less than a single update's jump says


@pytest.mark.parametrize("method", [NTKMTL, NTKMTLSR], ids=lambda c: c.name)
def test_max_grad_norm_clips_the_shared_gradient_alone(method):
    net = make_net()
    x = torch.randn(2, K, B, IN, dtype=torch.double)
    backward(method(K), net, x)
    heads = [p.grad.clone() for p in net.task_parameters()]
    backward(method(K, method.Options(max_grad_norm=1e-3)), net, x)
    shared_norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in net.shared_parameters()]))
    assert shared_norm == pytest.approx(1e-3, rel=1e-4)
    for before, param in zip(heads, net.task_parameters()):
        torch.testing.assert_close(param.grad, before)


# ------------------------------------------------------------------------------------------------ NTKMTL-SR
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_ntkmtl_sr_lambdas_match_brute_force_kernel(shape):
    n = 4
    net = make_net(shape=shape)
    x = torch.randn(2, K, B, IN, dtype=torch.double)
    stats = backward(NTKMTLSR(K, NTKMTLSROptions(subbatches=n)), net, x)

    out, record = net.forward_recorded(x)
    rows = per_row_losses(out)
    z = record.representation
    expected = []
    for k in range(K):
        jac = torch.stack([torch.autograd.grad(chunk.mean(), z, retain_graph=True)[0].reshape(-1)
                           for chunk in rows[k].chunk(n)])
        expected.append(torch.linalg.eigvalsh(jac @ jac.T).max())
    torch.testing.assert_close(stats["lambda"], torch.stack(expected))


def test_ntkmtl_sr_encoder_gets_the_weighted_gradient():
    net = make_net()
    x = torch.randn(2, K, B, IN, dtype=torch.double)
    stats = backward(NTKMTLSR(K), net, x)
    got = [p.grad.clone() for p in net.shared_parameters()]
    expected = torch.autograd.grad((stats["weight"] * task_losses(net, x)).sum(), net.shared_parameters())
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)


# --------------------------------------------------------------------------------------------------- PCGrad
def test_pcgrad_textbook_projection_of_two_conflicting_gradients():
    g = torch.tensor([[1.0, 0.0], [-1.0, 1.0]], dtype=torch.double)
    # g1 . g2 = -1: g1' = g1 - (-1/2) g2 = (0.5, 0.5); g2' = g2 - (-1/1) g1 = (0, 1)
    torch.testing.assert_close(PCGrad(2).aggregate(g), torch.tensor([0.5, 1.5], dtype=torch.double))


def test_pcgrad_leaves_agreeing_gradients_alone():
    g = torch.tensor([[1.0, 0.2], [0.3, 1.0], [1.0, 1.0]], dtype=torch.double)
    torch.testing.assert_close(PCGrad(3).aggregate(g), g.sum(0))


# --------------------------------------------------------------------------------------------------- CAGrad
def test_cagrad_with_zero_radius_is_the_mean_gradient():
    g = torch.randn(K, 12, dtype=torch.double)
    torch.testing.assert_close(CAGrad(K, CAGradOptions(c=0.0)).aggregate(g), g.mean(0))


@pytest.mark.parametrize("seed", range(3))
def test_cagrad_weights_solve_its_dual(seed):
    torch.manual_seed(seed)
    g = torch.randn(K, 12, dtype=torch.double) + torch.randn(1, 12, dtype=torch.double)
    gram, _ = normalised_gram(g @ g.T)

    def objective(w):
        return cagrad_objective(torch.as_tensor(w), gram, 0.5).item()

    best = minimize(objective, np.full(K, 1 / K), bounds=[(0, 1)] * K, method="SLSQP",
                    constraints={"type": "eq", "fun": lambda w: w.sum() - 1}, options={"ftol": 1e-14})
    weights, _ = CAGrad(K, CAGradOptions(c=0.5, iterations=50)).weigh(gram_of(g))  # cold start: uniform weights
    # undo d = (g0 + lam * g_w) / (1 + c^2) to recover the simplex weights w
    w = weights * 1.25 - 1 / K
    w = w / w.sum()
    g0_sq = (torch.full((K,), 1 / K, dtype=torch.double) @ gram).sum() / K
    assert objective(w.numpy()) - best.fun < 1e-2 * g0_sq.item()


# ------------------------------------------------------------------------------------------ Nash-MTL, FairGrad
@pytest.mark.parametrize("seed", range(3))
def test_nashmtl_weights_solve_the_bargaining_equation(seed):
    torch.manual_seed(seed)
    g = torch.randn(K, 20, dtype=torch.double) * torch.rand(K, 1, dtype=torch.double) * 10
    alpha, _ = NashMTL(K).weigh(gram_of(g))
    assert (alpha > 0).all()
    torch.testing.assert_close(g @ g.T @ alpha, 1 / alpha, rtol=1e-4, atol=0)


@pytest.mark.parametrize("alpha_fair", [0.5, 2.0, 5.0])
def test_fairgrad_weights_solve_the_fairness_equation(alpha_fair):
    torch.manual_seed(3)
    g = torch.randn(K, 20, dtype=torch.double) * torch.rand(K, 1, dtype=torch.double) * 10
    w, _ = FairGrad(K, FairGradOptions(alpha=alpha_fair)).weigh(gram_of(g))
    assert (w > 0).all()
    torch.testing.assert_close(g @ g.T @ w, w.pow(-1 / alpha_fair), rtol=1e-4, atol=0)


def _drifting_grams(seed: int, steps: int = 30) -> list[torch.Tensor]:
    """Task gradients that drift a little between updates, as they do in training."""
    torch.manual_seed(seed)
    g = torch.randn(K, 20, dtype=torch.double) * torch.rand(K, 1, dtype=torch.double) * 10
    out = []
    for _ in range(steps):
        g = g + 0.05 * g.norm(dim=1, keepdim=True) / 20**0.5 * torch.randn(K, 20, dtype=torch.double)
        out.append(g)
    return out


@pytest.mark.parametrize("seed", range(3))
def test_fairgrad_warm_started_solves_track_the_drifting_solution(seed):
    combiner = FairGrad(K, FairGradOptions(alpha=2.0, iterations=20, warm_iterations=4))
    for g in _drifting_grams(seed):
        w, _ = combiner.weigh(gram_of(g))
        torch.testing.assert_close(g @ g.T @ w, w.pow(-0.5), rtol=1e-4, atol=0)


@pytest.mark.parametrize("seed", range(3))
def test_cagrad_warm_started_solves_track_the_drifting_optimum(seed):
    warm = CAGrad(K, CAGradOptions(c=0.5, iterations=50, warm_iterations=5))
    for g in _drifting_grams(seed):
        warm.weigh(gram_of(g))
        cold, _ = CAGrad(K, CAGradOptions(c=0.5, iterations=200)).weigh(gram_of(g))
        normalised, _ = normalised_gram(gram_of(g))
        # as close to the optimum (a cold 200-step solve) as the 50-step cold solve of the dual test
        gap = cagrad_objective(warm.state["previous"], normalised, 0.5) - cagrad_objective(_simplex(cold), normalised, 0.5)
        assert gap < 1e-2 * normalised.mean()


def _simplex(weights: torch.Tensor) -> torch.Tensor:
    """Undo CAGrad's `d = (g0 + lam * g_w) / (1 + c^2)` (c = 0.5) to recover the simplex weights."""
    w = weights * 1.25 - 1 / K
    return w / w.sum()


def test_nashmtl_reuses_cached_weights_between_refreshes():
    net = make_net()
    x = torch.randn(2, K, B, IN, dtype=torch.double)
    combiner = NashMTL(K, NashMTLOptions(update_every=3))
    first = backward(combiner, net, x)["weight"]
    second = backward(combiner, net, 2 * x)["weight"]
    assert torch.equal(first, second)
    expected = torch.autograd.grad((first * task_losses(net, 2 * x)).sum(), net.shared_parameters())
    for param, grad in zip(net.shared_parameters(), expected):
        torch.testing.assert_close(param.grad, grad)


# ---------------------------------------------------------------------------------------------- Aligned-MTL
def test_aligned_mtl_makes_task_gradients_orthogonal_with_equal_norms():
    torch.manual_seed(4)
    g = torch.randn(K, 20, dtype=torch.double)
    weights, _ = AlignedMTL(K).weigh(gram_of(g))
    eigenvalues, basis = torch.linalg.eigh(g @ g.T)
    align = eigenvalues[0].sqrt() * (basis * eigenvalues.rsqrt()) @ basis.T
    aligned = align @ g
    torch.testing.assert_close(aligned @ aligned.T, eigenvalues[0] * torch.eye(K, dtype=torch.double))
    torch.testing.assert_close(weights @ g, aligned.sum(0))


# ----------------------------------------------------------------------------------------------------- FAMO
def test_famo_moves_logits_towards_the_task_whose_loss_fell_least_on_the_same_batch():
    """Each step halves task 0's loss on its batch and leaves the others': task 0's logit falls behind."""
    famo = FAMO(K, FAMOOptions(lr=0.1))
    losses = torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=torch.double)
    for _ in range(20):
        weights, stats = famo.weigh(losses)
        famo.after_step(losses * torch.tensor([0.5, 1.0, 1.0, 1.0], dtype=torch.double))
    logits = famo.state["logits"]
    assert logits[0] < logits[1:].min() - 0.1
    torch.testing.assert_close(logits[1:], logits[1:].mean().expand(3))  # equal decreases, equal logits
    assert torch.isclose(weights.sum(), torch.tensor(1.0, dtype=torch.double))


def test_famo_ignores_how_losses_differ_between_batches():
    """Losses that differ from one update to the next, but never move within an update, leave the logits."""
    famo = FAMO(K, FAMOOptions(lr=0.1))
    torch.manual_seed(0)
    for _ in range(20):
        losses = torch.rand(K, dtype=torch.double) + 0.1  # a new batch: new losses
        famo.weigh(losses)
        famo.after_step(losses)  # the step changed nothing
    torch.testing.assert_close(famo.state["logits"], torch.zeros(K))


def test_the_agent_hands_famo_its_batch_losses_after_the_step():
    from mtrl.config import load_config
    from mtrl.sac import MTSAC

    from tests.update_reference import synthetic_batches

    cfg = load_config(None, ["net.hidden_dim=16", "net.hidden_layers=1", "sac.batch_size=40"], method="famo")
    agent = MTSAC(cfg, 49, 4, 10, torch.device("cpu"))
    seen = []
    agent.critic_combiner.after_step = lambda losses: seen.append(losses)
    batch = synthetic_batches(1, 4)[0]
    before = agent.update(batch)["loss/critic"]
    assert len(seen) == 1 and seen[0].shape == (10,)
    assert not torch.equal(seen[0], before) and (seen[0] < before).float().mean() > 0.5  # the step helped


def test_famo_leaves_the_actor_loss_equally_weighted():
    assert isinstance(make_combiner("famo", K, role="actor"), EqualWeighting)
    assert isinstance(make_combiner("famo", K, role="critic"), FAMO)


# ---------------------------------------------------------------------------------------- degenerate inputs
DEGENERATE = {
    "one task without gradient": torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0], [0.5, -1.0, 2.0]]),
    "tiny gradient": torch.tensor([[1.0, 2.0, 0.0], [1e-30, 0.0, 0.0], [0.5, -1.0, 2.0]]),
    "equal gradients": torch.tensor([[1.0, 2.0, 3.0]] * 3),
    "opposite gradients": torch.tensor([[1.0, 2.0, 3.0], [-1.0, -2.0, -3.0], [0.0, 1.0, 0.0]]),
    "all zero": torch.zeros(3, 3),
    "one task": torch.tensor([[1.0, -2.0, 0.5]]),
}


@pytest.mark.parametrize("name", sorted(DEGENERATE))
@pytest.mark.parametrize("method", GRADIENT_METHODS, ids=lambda c: c.name)
def test_gradient_combiners_stay_finite_on_degenerate_inputs(method, name):
    g = DEGENERATE[name]
    combiner = method(g.shape[0])
    weights, stats = combiner.weigh(g.pow(2).sum(1).view(-1, 1, 1) if method is NTKMTL else gram_of(g))
    assert torch.isfinite(weights).all(), weights
    assert all(torch.isfinite(v).all() for v in stats.values())
    assert torch.isfinite(combiner.aggregate(g)).all()


@pytest.mark.parametrize("method", sorted(COMBINERS))
def test_every_combiner_is_finite_when_a_task_has_no_gradient(method):
    net = make_net()
    x = torch.randn(2, K, B, IN, dtype=torch.double)
    stats = backward(make_combiner(method, K), net, x, factor=torch.tensor([1.0, 0.0, 1.0, 1.0], dtype=torch.double))
    assert all(torch.isfinite(v).all() for v in stats.values())
    for param in net.parameters():
        assert torch.isfinite(param.grad).all()


# ------------------------------------------------- solver accuracy against scipy on ill-conditioned problems
def ill_conditioned(seed: int, k: int = 10, dim: int = 200) -> torch.Tensor:
    """Task gradients with a shared component and norms spread over three orders of magnitude."""
    rng = np.random.default_rng(seed)
    g = rng.normal(size=(k, dim)) + rng.normal(size=(1, dim)) * rng.uniform(0, 1.5)
    return torch.tensor(g * 10 ** rng.uniform(-1.5, 1.5, size=(k, 1)))


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b / (a.norm() * b.norm()))


@pytest.mark.parametrize("c", [0.5, 0.9])
def test_cagrad_direction_matches_an_exact_solve(c):
    for seed in range(20):
        g = ill_conditioned(seed)
        gram, _ = normalised_gram(g @ g.T)
        a = gram.numpy()
        mean = np.full(len(a), 1 / len(a))
        radius = c * np.sqrt(mean @ a @ mean)

        def objective(w):
            return w @ a @ mean + radius * np.sqrt(max(w @ a @ w, 0.0) + 1e-20)

        best = min((minimize(objective, start, bounds=[(0, 1)] * len(a), method="SLSQP",
                             constraints={"type": "eq", "fun": lambda w: w.sum() - 1},
                             options={"ftol": 1e-15, "maxiter": 1000})
                    for start in [mean, *np.eye(len(a))]), key=lambda r: r.fun)
        g_w = torch.tensor(best.x) @ g
        g0 = g.mean(0)
        exact = g0 + c * g0.norm() / g_w.norm() * g_w
        weights, _ = CAGrad(len(a), CAGradOptions(c=c)).weigh(g @ g.T)  # a cold solve: 50 steps
        assert cosine(weights @ g, exact) >= 0.999, seed


def test_the_solvers_device_code_matches_their_numpy_code():
    """On the CPU the solvers run in NumPy; on a GPU the same steps run in torch. Forced onto the CPU, the torch
    code gives the same solutions: the Newton solver's to rounding, CAGrad's dual to nearly the same objective value
    and direction (a near-tie between two tasks may send the two codes' pairwise steps different ways)."""
    for seed in range(20):
        g = ill_conditioned(seed)
        for alpha in (1.0, 2.0):
            (w_np, v_np), (w_torch, v_torch) = (alpha_fair_weights(g @ g.T, alpha, 20, backend=backend)
                                                for backend in ("numpy", "torch"))
            torch.testing.assert_close(w_np, w_torch, rtol=1e-9, atol=0)
            torch.testing.assert_close(v_np, v_torch, rtol=1e-9, atol=0)
        gram, _ = normalised_gram(g @ g.T)
        uniform = torch.full((len(g),), 1 / len(g), dtype=gram.dtype)
        w_np, w_torch = (cagrad_dual(gram, 0.9, 50, uniform, backend=backend) for backend in ("numpy", "torch"))
        assert w_np.dtype == w_torch.dtype == gram.dtype
        f_np, f_torch = (cagrad_objective(w, gram, 0.9).item() for w in (w_np, w_torch))
        assert f_np == pytest.approx(f_torch, rel=1e-4), seed
        assert cosine(w_np.double() @ g, w_torch.double() @ g) >= 0.9999, seed


@pytest.mark.parametrize("method, alpha", [(NashMTL, 1.0), (FairGrad, 2.0), (FairGrad, 0.5)])
def test_bargaining_and_fairness_weights_match_an_independent_solve(method, alpha):
    """The positive w with `(G G^T) w = w^(-1/alpha)` minimises `w^T M w / 2 - sum u(w_i)`, u' = w^(-1/alpha):
    scipy's L-BFGS-B on that function gives the same direction."""
    for seed in range(20):
        g = ill_conditioned(seed)
        m = (g @ g.T).numpy()
        if alpha == 1.0:
            def utility(w):
                return np.log(w).sum(), 1 / w
        else:
            def utility(w):
                return (w ** (1 - 1 / alpha)).sum() / (1 - 1 / alpha), w ** (-1 / alpha)

        def objective(w):
            u, du = utility(w)
            return 0.5 * w @ m @ w - u, m @ w - du

        start = np.diag(m) ** (-alpha / (1 + alpha))
        best = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=[(1e-12, None)] * len(m),
                        options={"ftol": 1e-20, "gtol": 1e-14, "maxiter": 10000})
        combiner = NashMTL(len(m)) if method is NashMTL else FairGrad(len(m), FairGradOptions(alpha=alpha))
        weights, _ = combiner.weigh(g @ g.T)
        assert cosine(weights @ g, torch.tensor(best.x) @ g) >= 0.999, seed
