"""Growth in blocks: the structural zeros, the function at insertion, the exact cost."""

import pytest
import torch

from growth_models import ConvPoolFlattenLinear, conv_bn_conv, image_input, mlp
from sparsegrow.growth import Grower, count_parameters
from sparsegrow.growth.blocks import block_rows, block_zeros, init_blocks
from sparsegrow.growth.budget import added_parameters


def _grow_block(model, grower, sizes, initial, seed=0):
    """One growth event in blocks, as GrowthPlugin runs it; returns the zeros it keeps."""
    before = {name: w for name, w in grower.widths().items() if sizes.get(name)}
    grower.widen_many(sizes, init="zero_out", generator=torch.Generator().manual_seed(seed))
    init_blocks(model, grower.pairs, before, torch.Generator().manual_seed(seed + 1))
    zeros = block_zeros(model, grower.pairs, before, initial)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, zero in zeros.items():
            params[name].masked_fill_(zero, 0.0)
    return zeros


def test_a_block_reads_only_the_block_below_and_only_the_output_layer_reads_it():
    torch.manual_seed(0)
    model = mlp()   # Flatten, Linear(12, 10) "1", ReLU, Linear(10, 8) "3", ReLU, head "5"
    grower = Grower(model)
    initial = {"1": 10, "3": 8}
    first = _grow_block(model, grower, {"1": 2, "3": 3}, initial)["3.weight"]
    zeros = _grow_block(model, grower, {"1": 4, "3": 5}, initial, seed=2)
    w = model[3].weight   # 8 + 3 + 5 rows, 10 + 2 + 4 columns
    assert w.shape == (16, 16)
    assert set(zeros) == {"3.weight"}
    z = zeros["3.weight"]
    assert not (z[:11, :12] & first).any()   # each event's zeros are its own entries
    z[:11, :12] |= first
    assert z[:8, 10:].all() and not z[:8, :10].any()   # the initial units read initial ones
    assert z[8:11, 12:].all() and z[8:11, :10].all()   # the earlier block reads its block below
    assert not z[8:11, 10:12].any()
    assert z[11:, :12].all() and not z[11:, 12:].any()     # the new block: only the new one
    assert (w[11:, 12:] != 0).all()              # drawn, not left dead at zero
    assert model[5].weight.shape == (3, 16) and (model[5].weight[:, 11:] == 0).all()


def test_a_block_keeps_the_function_at_insertion():
    torch.manual_seed(0)
    model = mlp()
    grower = Grower(model)
    x = torch.randn(5, 12)
    expected = model(x)
    _grow_block(model, grower, {"1": 3, "3": 2}, {"1": 10, "3": 8})
    # the new units' outgoing weights are exact zeros (a wider product may sum in another order)
    torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("make", [mlp, conv_bn_conv, ConvPoolFlattenLinear])
@pytest.mark.parametrize("sizes", [{0: 3, 1: 4}, {0: 0, 1: 4}, {0: 3, 1: 0}])
def test_the_cost_of_blocks_is_the_entries_they_can_make_non_zero(make, sizes):
    """added_parameters(blocks=...) equals the entries the event added less its structural
    zeros, over two events (the second meets the first's blocks)."""
    torch.manual_seed(0)
    model = make()
    grower = Grower(model, example=image_input(model))
    producers = [pair.producer for pair in grower.pairs]
    widths = grower.widths()
    initial = {name: widths[name] for name in producers}
    for event in range(2):
        event_sizes = {producers[i]: m for i, m in sizes.items() if i < len(producers)}
        predicted = added_parameters(model, grower.pairs, event_sizes, blocks=initial)
        dense = count_parameters(model)
        zeros = _grow_block(model, grower, event_sizes, initial, seed=event)
        added = count_parameters(model) - dense - sum(int(z.sum()) for z in zeros.values())
        assert predicted == added


def test_block_rows_cover_the_rows_past_the_initial_width_of_producer_and_batchnorm():
    torch.manual_seed(0)
    model = conv_bn_conv()
    grower = Grower(model, example=image_input(model))
    grower.widen_many({"0": 3}, init="random")
    rows = block_rows(model, grower.pairs, {"0": 4})
    assert set(rows) == {"0.weight", "0.bias", "1.weight", "1.bias"}
    assert rows["0.weight"][4:].all() and not rows["0.weight"][:4].any()
    assert rows["1.bias"].tolist() == [False] * 4 + [True] * 3
