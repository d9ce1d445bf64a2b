"""BirthGate: each evaluated input sees exactly the units that existed at its nearest experience."""

import copy

import pytest
import torch

from sparsegrow.errors import GrowthError
from sparsegrow.growth import Grower
from sparsegrow.growth.birth_gate import BirthGate, nearest_prototype
from sparsegrow.growth.silence import zero_beyond

from growth_models import ConvPoolFlattenLinear, image_input, mlp, settle


def test_nearest_prototype_by_euclidean_distance_on_the_flattened_input():
    prototypes = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [5.0, 0.0, 0.0, 0.0]])
    x = torch.tensor([[[0.1, 0.2], [0.0, 0.3]], [[0.9, 1.2], [0.8, 1.0]], [[4.0, 1.0], [0.0, 0.0]]])
    assert nearest_prototype(x, prototypes).tolist() == [0, 1, 2]


def test_zero_beyond_takes_one_start_or_one_per_sample():
    x = torch.arange(1.0, 13.0).view(3, 4)
    assert zero_beyond(x, 2, -1).tolist() == [[1, 2, 0, 0], [5, 6, 0, 0], [9, 10, 0, 0]]
    per_sample = zero_beyond(x, torch.tensor([0, 4, 1]), -1)
    assert per_sample.tolist() == [[0, 0, 0, 0], [5, 6, 7, 8], [9, 0, 0, 0]]
    channels = torch.ones(2, 3, 2, 2)
    out = zero_beyond(channels, torch.tensor([1, 3]), 1)
    assert out[0].sum() == 4 and out[1].sum() == 12 and out[0, 0].sum() == 4


def _grown(make, blocks=False):
    """(model grown by two events, the gate recording three 'experiences', inputs of each)."""
    model = settle(make()).eval()
    x = image_input(model)
    grower = Grower(model, example=x)
    generator = torch.Generator().manual_seed(0)
    gate, models = BirthGate(blocks=blocks), []
    inputs = [x + 10.0 * k for k in range(3)]   # far apart: each is nearest its own prototype
    for k in range(3):
        if k:
            for pair in grower.pairs:
                grower.widen(pair.producer, 2, init="random", generator=generator)
        gate.record(inputs[k], grower.widths(), grower.pairs)
        models.append(copy.deepcopy(model))
    return model, grower, gate, inputs, models


@pytest.mark.parametrize("make", [mlp, ConvPoolFlattenLinear])
def test_each_input_sees_the_model_as_it_was_at_its_experience(make):
    model, grower, gate, inputs, models = _grown(make)
    gate.attach(model)
    with torch.no_grad():
        assert (model(inputs[0]) - models[2](inputs[0])).abs().max() > 1e-4  # growth shows
        for k, x in enumerate(inputs):
            # within float32 rounding, not bit-exact: the grown model's wider matrix products
            # sum the same terms plus exact zeros in another order (measured ≤ 4e-7 here)
            torch.testing.assert_close(model(x), models[k](x), rtol=1e-5, atol=1e-6)
        mixed = torch.cat([inputs[0][:1], inputs[2][:1], inputs[1][:1]])
        expected = torch.cat([models[0](mixed[:1]), models[2](mixed[1:2]),
                              models[1](mixed[2:])])
        torch.testing.assert_close(model(mixed), expected, rtol=1e-5, atol=1e-6)


def _kept(model, grower, keep):
    """``model``'s output function with each producer's units outside ``keep[producer]`` (a
    list of unit indices) silenced: their outgoing weights zeroed on a copy."""
    silent = copy.deepcopy(model)
    with torch.no_grad():
        for pair in grower.pairs:
            weight = silent.get_submodule(pair.consumer).weight
            drop = torch.ones(weight.shape[1] // pair.spatial, dtype=torch.bool)
            drop[keep[pair.producer]] = False
            weight[:, drop.repeat_interleave(pair.spatial)] = 0
    return silent


def test_with_blocks_each_input_sees_its_experiences_block_alone():
    """Experience 0: the initial units; experience k: the block grown in k; in training, the
    experience given: everything grown since the last record."""
    model, grower, gate, inputs, _ = _grown(mlp, blocks=True)
    initial = {name: w for name, w in gate.widths[0].items()}
    own = [{p: list(range(n)) for p, n in initial.items()},
           {p: [n, n + 1] for p, n in initial.items()},
           {p: [n + 2, n + 3] for p, n in initial.items()}]
    with torch.no_grad():   # the expectations before any hook is on the model
        expected = [_kept(model, grower, own[k])(x) for k, x in enumerate(inputs)]
        in_training = _kept(model, grower, own[2])(inputs[0])
        gate.attach(model)
        for k, x in enumerate(inputs):
            torch.testing.assert_close(model(x), expected[k], rtol=1e-5, atol=1e-6)
        gate.detach()
        gate.attach(model, training=2)
        model.train()   # judged by the experience given, not by the input
        torch.testing.assert_close(model(inputs[0]), in_training, rtol=1e-5, atol=1e-6)
        assert (in_training - expected[0]).abs().max() > 1e-4


def test_the_gate_is_off_in_train_mode_and_after_detach():
    model, grower, gate, inputs, models = _grown(mlp)
    with torch.no_grad():
        plain = model(inputs[0])
        gate.attach(model)
        gated = model(inputs[0])
        model.train()   # bit-exact: the gate is off, so the same kernels run on the same memory
        assert torch.equal(model(inputs[0]), plain)
        model.eval()
        gate.detach()
        assert torch.equal(model(inputs[0]), plain)
    assert (gated - plain).abs().max() > 1e-4
    torch.testing.assert_close(gated, models[0](inputs[0]), rtol=1e-5, atol=1e-6)   # wider


def test_state_round_trip_gives_the_same_gating():
    model, grower, gate, inputs, _ = _grown(ConvPoolFlattenLinear)
    restored = BirthGate()
    restored.load_state_dict(copy.deepcopy(gate.state_dict()))
    with torch.no_grad():
        gate.attach(model)
        expected = model(inputs[0])
        gate.detach()
        restored.attach(model)   # bit-exact: the same gate on the same model
        assert torch.equal(model(inputs[0]), expected)


def test_a_model_that_changes_the_batch_dimension_fails_naming_the_layer():
    model, grower, gate, inputs, _ = _grown(mlp)
    gate.attach(model)
    consumer = grower.pairs[0].consumer
    handle = model.get_submodule(consumer).register_forward_pre_hook(
        lambda m, args: (args[0][:1],), prepend=True)
    with pytest.raises(GrowthError, match=f"'{consumer}'"):
        model(inputs[0])
    handle.remove()


def test_record_measures_how_many_of_an_experiences_inputs_its_judge_sends_home():
    gate = BirthGate()
    first = torch.zeros(4, 2)
    gate.record(first, {}, [])
    # prototypes (0, 0) and (2, 0): the inputs at x = 0.5, 1.5, 2.5, 3.5 go 0, 1, 1, 1
    second = torch.tensor([[0.5, 0.0], [1.5, 0.0], [2.5, 0.0], [3.5, 0.0]])
    gate.record(second, {}, [])
    assert gate.routing == [1.0, 0.75]
    torch.testing.assert_close(gate.prototypes[1], torch.tensor([2.0, 0.0]))


def test_a_bad_birth_gate_value_is_one_line():
    from sparsegrow.errors import ConfigError
    from sparsegrow.plugins import GrowthPlugin

    with pytest.raises(ConfigError, match=r"^birth_gate must be true, false or 'auto', got 'on'$"):
        GrowthPlugin(birth_gate="on")
