"""SparseGrowPlugin(budget=...): the model stays within its parameter budget."""

import pytest
import torch
from avalanche.training import Naive
from torch import nn

from plugin_streams import quiet_evaluator, synthetic_stream
from sparsegrow.errors import ConfigError
from sparsegrow.growth import count_parameters
from sparsegrow.plugins import SparseGrowPlugin


def test_a_grown_mlp_never_exceeds_its_budget_and_spends_it_over_the_stream():
    """Plugin level: every experience grows (the data asks for more than its share), the model
    stays within the budget, and the last experience reaches close to it."""
    stream = synthetic_stream(n_experiences=4)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.ReLU(), nn.Linear(16, 16),
                          nn.ReLU(), nn.Linear(16, 4))
    initial = count_parameters(model)
    sg = SparseGrowPlugin(budget=3.0, growth={"units": 40, "grow_at": 0.0})
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.05),
                     train_mb_size=32, train_epochs=1, plugins=[sg],
                     evaluator=quiet_evaluator())
    sizes = []
    for experience in stream.train_stream:
        strategy.train(experience)
        sizes.append(count_parameters(model))
    assert all(b > a for a, b in zip(sizes, sizes[1:]))
    assert sizes[-1] <= 3 * initial
    assert sizes[-1] > 0.9 * 3 * initial
    with pytest.raises(ConfigError, match="budget must be a positive number"):
        SparseGrowPlugin(budget=-2)
