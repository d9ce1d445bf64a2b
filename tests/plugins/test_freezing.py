import torch
import torch.nn as nn
from avalanche.models import IncrementalClassifier
from avalanche.training import Naive

from plugin_streams import mlp, quiet_evaluator, synthetic_stream
from sparsegrow.plugins import FreezingPlugin


def _snapshot(plugin, model):
    params = dict(model.named_parameters())
    return {n: (m.clone(), params[n].detach()[m].clone()) for n, m in plugin.locks.frozen.items()}


def _check_unchanged(snapshots, model):
    params = dict(model.named_parameters())
    for snap in snapshots:
        for n, (mask, values) in snap.items():
            p = params[n].detach()
            current = p[tuple(slice(0, s) for s in mask.shape)][mask]
            assert torch.equal(current, values), n


def _run(make_opt, plugin, *, model=None, stream=None, epochs=2):
    torch.manual_seed(0)
    stream = stream or synthetic_stream()
    model = model or mlp()
    strategy = Naive(model=model, optimizer=make_opt(model.parameters()), train_mb_size=16,
                     train_epochs=epochs, plugins=[plugin], evaluator=quiet_evaluator())
    snapshots = []
    for exp in stream.train_stream:
        strategy.train(exp)
        _check_unchanged(snapshots, model)
        snapshots.append(_snapshot(plugin, model))
    return model, plugin


def test_masks_frozen_bit_identical_sgd_momentum_wd_adam_and_adamw():
    for make in (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3),
                 lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=1e-3),
                 lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1)):
        model, plugin = _run(make, FreezingPlugin(gating="mask", freeze_ratio=0.3))
        # masks grow by exactly 30% of the free entries per experience: 1 - 0.7^5 after 5
        frac = plugin.frozen_fraction()
        assert set(frac) == {n for n, _ in model.named_parameters()}
        assert abs(frac["1.weight"] - (1 - 0.7 ** 5)) < 0.01


def test_incremental_classifier_rows_padded_and_old_rows_protected():
    stream = synthetic_stream(scenario="class", n_experiences=3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.ReLU())
    model = nn.Sequential(model, IncrementalClassifier(16, initial_out_features=2))
    plugin = FreezingPlugin(freeze_ratio=0.5, gating="both")
    _run(lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), plugin, model=model, stream=stream)
    head = plugin.locks.frozen["1.classifier.weight"]
    assert head.shape == (6, 16)
    # 2 rows: 16 of 32 frozen; 4 rows: +24 of the 48 free; 6 rows: +28 of the 56 free
    assert int(head.sum()) == 16 + 24 + 28


def _drift(plugin):
    """Largest change of the outputs on experience 0's samples caused by training on exp 1."""
    stream = synthetic_stream(n_experiences=2)
    torch.manual_seed(0)
    model = mlp(hidden=32)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    strategy = Naive(model=model, optimizer=optimizer,
                     train_mb_size=16, train_epochs=2, plugins=[plugin],
                     evaluator=quiet_evaluator())
    strategy.train(stream.train_stream[0])
    x0 = torch.stack([stream.train_stream[0].dataset[i][0] for i in range(128)])
    before = model(x0).detach()
    strategy.train(stream.train_stream[1])
    return float((model(x0).detach() - before).abs().max())


def test_subspace_gating_protects_old_outputs_without_masks():
    plugin = FreezingPlugin(gating="subspace", subspace_energy=0.999)
    protected = _drift(plugin)
    unprotected = _drift(FreezingPlugin(gating="mask", freeze_ratio=0.0))
    assert not plugin.locks.frozen   # no masks with gating="subspace"
    assert protected < 0.2 * unprotected
    assert plugin.timings["importance"] > 0 and plugin.timings["gating"] > 0


def test_gate_topk_limits_updates_per_step():
    torch.manual_seed(0)
    model = mlp()
    plugin = FreezingPlugin(gating="mask", gate_topk=0.1, freeze_ratio=0.0)
    stream = synthetic_stream(n_experiences=1)
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                     train_mb_size=128, train_epochs=1, plugins=[plugin],
                     evaluator=quiet_evaluator())
    before = model[1].weight.detach().clone()
    strategy.train(stream.train_stream[0])       # exactly one step (128 samples)
    changed = float((model[1].weight.detach() != before).float().mean())
    assert 0.05 < changed <= (round(0.1 * 576) + 0.5) / 576


def test_a_checkpoint_written_before_the_newer_keys_still_loads():
    _, plugin = _run(lambda p: torch.optim.SGD(p, lr=0.1), FreezingPlugin(gating="subspace"))
    state = plugin.state_dict()
    old = {k: state[k] for k in ("locks", "subspace", "timings", "steps")}
    fresh = FreezingPlugin(gating="subspace")
    fresh.load_state_dict(old)
    assert fresh.subspace.sizes() == plugin.subspace.sizes()
    assert fresh._steps == plugin._steps
