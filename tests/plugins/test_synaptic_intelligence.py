"""Our SI keeps real snapshots on the CPU: non-zero importances and a non-zero penalty."""

import torch
from avalanche.core import SupervisedPlugin
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin

from sparsegrow.benchmarks import build_benchmark
from sparsegrow.models import build_model
from sparsegrow.plugins.synaptic_intelligence import SynapticIntelligencePlugin


def test_si_learns_importances_and_penalises_moving_them_on_cpu():
    torch.manual_seed(0)
    bench = build_benchmark("synthetic", n_experiences=2, n_train=64)
    model = build_model("mlp", input_shape=bench.input_shape, n_classes=bench.n_classes,
                        hidden=[16])
    si = SynapticIntelligencePlugin(si_lambda=1.0)
    penalties = []

    class Probe(SupervisedPlugin):
        """Records SI's penalty at every update of the second experience."""

        def before_update(self, strategy, **kwargs):
            if strategy.clock.train_exp_counter == 1:
                penalties.append(float(si.compute_ewc_loss(
                    strategy.model, si.ewc_data, si.excluded_parameters, device="cpu",
                    lambd=1.0)))

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    strategy = Naive(model=model, optimizer=optimizer,
                     train_mb_size=16, evaluator=EvaluationPlugin(loggers=[]),
                     plugins=[si, Probe()])
    strategy.train(bench.train_stream[0])
    importance = torch.cat([v.data for v in si.ewc_data[1].values()])
    assert importance.sum() > 0 and importance.min() >= 0
    strategy.train(bench.train_stream[1])
    # the anchor stays where experience 0 ended while the weights move on: the penalty grows
    assert penalties[0] == 0.0 and max(penalties) > 0.0


def test_presets_naming_si_get_the_fixed_plugin():
    from sparsegrow.config.registry import plugin_class

    assert plugin_class("si") is SynapticIntelligencePlugin
