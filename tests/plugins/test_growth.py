import pytest
import torch
from avalanche.training import Naive
from avalanche.training.plugins import LFLPlugin, SynapticIntelligencePlugin

from plugin_streams import mlp, quiet_evaluator, synthetic_stream
from sparsegrow.errors import IncompatiblePluginError
from sparsegrow.growth import count_parameters
from sparsegrow.plugins import FreezingPlugin, GIFtMetric, GrowthPlugin


def _run(plugins, *, n_experiences=5, metrics=(), opt=None, epochs=2, hidden=16):
    torch.manual_seed(0)
    stream = synthetic_stream(n_experiences=n_experiences)
    model = mlp(hidden=hidden)
    optimizer = (opt or (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)))(model.parameters())
    gift = GIFtMetric(stream=stream.test_stream)
    strategy = Naive(model=model, optimizer=optimizer, train_mb_size=16, train_epochs=epochs,
                     plugins=list(plugins), evaluator=quiet_evaluator(gift, *metrics))
    for exp in stream.train_stream:
        strategy.train(exp)
    return strategy, model, gift


@pytest.mark.parametrize("init", ["on_data", "zero_out"])
def test_function_preserving_growth_has_zero_gift(init):
    plugin = GrowthPlugin(init=init, units=8, grow_at=0.5)
    _, model, gift = _run([plugin])
    assert len(gift.events) == 4   # every experience after the first
    for event in gift.events:
        assert abs(event["GIFt/at_growth"]) <= 1e-6
    # ...on a model that predicts something (chance is 0.25 over the stream's 4 classes; one
    # event, mid-experience on this tiny stream, can dip to chance: seen at 0.26, mean 0.60)
    accuracy = [event["GIFt/acc_before_growth"] for event in gift.events]
    assert sum(accuracy) / len(accuracy) > 0.4
    # the new units were trained: their outgoing columns are no longer zero
    assert model[1].weight.shape[0] == 16 + 4 * 8
    assert (model[3].weight[:, 16:].abs().sum(0) > 0).all()


def test_random_growth_forgets_at_growth():
    _, _, gift = _run([GrowthPlugin(init="random", units=16, grow_at=0.5)])
    gifts = [abs(e["GIFt/at_growth"]) for e in gift.events]
    # random outgoing weights change the function at insertion: accuracy on old experiences
    # moves (on this tiny stream in either direction)
    assert sum(gifts) / len(gifts) > 0.01


def test_schedule_parameter_overhead_and_sparse_pins():
    plugin = GrowthPlugin(init="on_data", units=2, grow_at=0.75, init_density=0.5)
    _, model, gift = _run([plugin])

    def n_params(h1, h2):
        return 36 * h1 + h1 + h1 * h2 + h2 + h2 * 4 + 4

    assert count_parameters(model) == n_params(24, 24)
    assert [e["params_after"] for e in plugin.history] == [n_params(h, h) for h in (18, 20, 22, 24)]
    # 8 iterations × 2 epochs per experience; growth at iteration round(0.75 · 16) = 12
    assert [e["x"] for e in gift.events] == [16 * k + 12 for k in (1, 2, 3, 4)]
    # sparse init: each new incoming row keeps round(0.5 · fan-in) entries, the rest are pinned
    # and still exactly zero after training
    for name, fan_in in (("1.weight", 36), ("3.weight", 16)):
        pinned = plugin._pins.pinned[name]
        weight = model.get_parameter(name).detach()
        assert not pinned[:16].any()
        assert (pinned[16:18, :fan_in].sum(1) == fan_in // 2).all()
        assert (weight[pinned] == 0).all()
    assert (model[1].weight[16:].detach() != 0).sum() == 8 * 18


def test_optimizer_state_survives_next_make_optimizer():
    plugin = GrowthPlugin(init="on_data", units=4, grow_at=0.5)
    strategy, model, _ = _run([plugin], n_experiences=2)
    weight = model[1].weight
    assert strategy.optimized_param_id["1.weight"] is weight
    momentum = strategy.optimizer.state[weight]["momentum_buffer"].clone()
    assert momentum.shape == weight.shape
    strategy.make_optimizer()   # what Avalanche runs before the next experience
    held = [p for g in strategy.optimizer.param_groups for p in g["params"]]
    assert sum(p is weight for p in held) == 1
    assert len(held) == len(list(model.parameters()))
    assert torch.equal(strategy.optimizer.state[weight]["momentum_buffer"], momentum)


@pytest.mark.parametrize("op,init", [("deepen", "identity"), ("deepen", "random"),
                                     ("branch", "random")])
def test_deepen_and_branch_add_trained_parameters(op, init):
    plugin = GrowthPlugin(op=op, init=init, grow_at=0.5)
    strategy, model, gift = _run([plugin], n_experiences=3)
    new = [n for e in plugin.history for op_ in e["operations"] for n in op_["new_params"]]
    assert len(new) == 4   # weight and bias per event, two events
    held = {id(p) for g in strategy.optimizer.param_groups for p in g["params"]}
    assert all(id(model.get_parameter(n)) in held for n in new)
    assert all(n in strategy.optimized_param_id for n in new)
    if init == "identity":   # the inserted identity layer after a ReLU'd Linear preserves
        assert all(abs(e["GIFt/at_growth"]) <= 1e-6 for e in gift.events)


@pytest.mark.parametrize("other,name", [(SynapticIntelligencePlugin(si_lambda=1.0), "SI"),
                                        (LFLPlugin(lambda_e=1.0), "LFL")])
def test_incompatible_plugins_fail_at_start(other, name):
    torch.manual_seed(0)
    model = mlp()
    before = [p.detach().clone() for p in model.parameters()]
    stream = synthetic_stream(n_experiences=1)
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                     train_mb_size=16, plugins=[GrowthPlugin(), other],
                     evaluator=quiet_evaluator())
    with pytest.raises(IncompatiblePluginError, match=f"GrowthPlugin grows the model.*{name}"):
        strategy.train(stream.train_stream[0])
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    # without growth, the same plugin is fine
    Naive(model=mlp(), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), train_mb_size=16,
          plugins=[FreezingPlugin(), other], evaluator=quiet_evaluator())


def test_standalone_growth_and_freezing_plugins_cooperate():
    freezing = FreezingPlugin(gating="mask", freeze_ratio=0.3)
    growth = GrowthPlugin(units=2, init_density=0.5)
    _, model, gift = _run([growth, freezing], n_experiences=3)
    assert growth.protection is freezing
    assert freezing.locks.pinned["1.weight"].shape == model[1].weight.shape
    assert int(freezing.locks.pinned["1.weight"].sum()) == 2 * 2 * 18
    assert "Model/frozen_fraction/1.weight" in gift.events[-1]


@pytest.mark.parametrize("conv_multiple, widths", [(8, [32, 40, 48]), (1, [32, 33, 34])])
def test_data_driven_conv_growth_keeps_widths_on_channel_blocks(conv_multiple, widths):
    # energy 0 asks for nothing, min_units=1 for one unit per event: the conv (32 channels,
    # cap 8) grows a whole block of 8 by default, one channel with conv_multiple=1; the Linear
    # layer grows by the exact count
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.Linear(32 * 36, 12),
                                torch.nn.ReLU(), torch.nn.Linear(12, 4))
    plugin = GrowthPlugin(energy=0.0, min_units=1, conv_multiple=conv_multiple, grow_at=0.5)
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
                     train_mb_size=16, train_epochs=1, plugins=[plugin],
                     evaluator=quiet_evaluator())
    for exp in synthetic_stream(n_experiences=3).train_stream:
        strategy.train(exp)
    assert [e["widths"]["0"] for e in plugin.history] == widths[1:]
    assert [e["widths"]["3"] for e in plugin.history] == [13, 14]
