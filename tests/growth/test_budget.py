"""The parameter budget: exact grown sizes, the common scaling, the share per event."""

import pytest
import torch

from growth_models import ConvPoolFlattenLinear, TinyResNet, conv_bn_conv, image_input, mlp
from sparsegrow.errors import ConfigError
from sparsegrow.growth import Grower, count_parameters
from sparsegrow.growth.budget import (UNKNOWN_LENGTH_SHARE, event_allowance, fit_budget,
                                      added_parameters, resolve_budget)


@pytest.mark.parametrize("make", [mlp, conv_bn_conv, ConvPoolFlattenLinear, TinyResNet])
def test_added_parameters_is_the_count_widening_adds(make):
    """Integer shape arithmetic: the prediction equals the model actually grown (BatchNorms,
    flatten's spatial columns, layers that are both consumer and producer)."""
    torch.manual_seed(0)
    model = make()
    grower = Grower(model, example=image_input(model))
    sizes = {pair.producer: 3 + i for i, pair in enumerate(grower.pairs)}
    before = count_parameters(model)
    predicted = added_parameters(model, grower.pairs, sizes)
    assert predicted > 0
    grower.widen_many(sizes, init="zero_out")
    assert count_parameters(model) - before == predicted


def test_fit_budget_takes_the_largest_common_scaling_that_fits():
    cost = lambda s: 10 * s["a"] + 100 * s["b"]   # noqa: E731
    assert fit_budget({"a": 8, "b": 4}, cost, 10_000) == {"a": 8, "b": 4}
    # 8, 4 costs 480; scaled to 6/8 -> a 6, b 3 costs 360; 7/8 -> 7, 3 costs 370
    assert fit_budget({"a": 8, "b": 4}, cost, 375) == {"a": 7, "b": 3}
    assert fit_budget({"a": 8, "b": 4}, cost, 5) == {"a": 0, "b": 0}
    assert fit_budget({"a": 8, "b": 4}, cost, 0) == {"a": 0, "b": 0}


def test_each_event_gets_the_budget_left_spread_over_the_events_left():
    assert event_allowance(budget=1000, params=400, events_left=3) == 200
    assert event_allowance(budget=1000, params=400, events_left=1) == 600
    assert event_allowance(budget=1000, params=1200, events_left=3) == 0
    assert event_allowance(budget=1000, params=400, events_left=None) == 600 // UNKNOWN_LENGTH_SHARE


def test_budget_is_a_count_or_a_multiple_of_the_initial_model():
    assert resolve_budget(5000, 1234) == 5000
    assert resolve_budget(2.5, 1000) == 2500
    for bad in (0, -1, True, "10k"):
        with pytest.raises(ConfigError, match="budget must be a positive number"):
            resolve_budget(bad, 1000)
