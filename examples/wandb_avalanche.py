"""SparseGrow in a plain Avalanche script, with forgetting curves and growth events in W&B."""
import argparse

import torch
from torch import nn
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.logging import InteractiveLogger
from sparsegrow import SparseGrowPlugin, GIFtMetric, WandBLogger
from sparsegrow.benchmarks import permuted_mnist

parser = argparse.ArgumentParser()
parser.add_argument("--experiences", type=int, default=5)
parser.add_argument("--train-subset", type=int, default=None)   # samples per experience
args = parser.parse_args()

benchmark = permuted_mnist(n_experiences=args.experiences, train_subset=args.train_subset)
model = nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
wandb_logger = WandBLogger(project="sparsegrow-demo", mode="auto")   # offline without a key

strategy = Naive(
    model=model,                       # any nn.Module: analysed with torch.fx, never wrapped
    optimizer=optimizer,               # kept: grown tensors keep their momentum / Adam moments
    train_mb_size=128,
    plugins=[SparseGrowPlugin(), ReplayPlugin(mem_size=500)],   # composes with Replay/EWC/LwF
    evaluator=EvaluationPlugin(accuracy_metrics(experience=True, stream=True),
                               GIFtMetric(stream=benchmark.test_stream),
                               loggers=[InteractiveLogger(), wandb_logger]),
)
for experience in benchmark.train_stream:
    strategy.train(experience)
    strategy.eval(benchmark.test_stream)
wandb_logger.finish()
