"""The core (growth, protection, plugins, logger, models, benchmarks) works without the
experiment harness: a plugin user installs ``sparsegrow`` without ``[experiments]``."""

import subprocess
import sys
import textwrap

# what only `sparsegrow[experiments]` / `[search]` install. wandb and matplotlib are not here:
# Avalanche 0.6.0 itself requires them and imports them with its metrics.
HARNESS = ("hydra", "hydra_zen", "hydra_plugins", "omegaconf", "mnist", "submitit", "optuna")

SCRIPT = textwrap.dedent("""
    import importlib.abc, sys

    class Uninstalled(importlib.abc.MetaPathFinder):
        # as if the experiments extra were not installed
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {harness!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, Uninstalled())

    import torch
    from avalanche.training import Naive

    import sparsegrow
    from sparsegrow import FreezingPlugin, GIFtMetric, GrowthPlugin, SparseGrowPlugin, WandBLogger
    from sparsegrow.benchmarks import synthetic
    from sparsegrow.models import build_model

    torch.manual_seed(0)
    bench = synthetic(n_experiences=2, n_train=32, n_test=16)
    model = build_model("mlp", input_shape=bench.input_shape, n_classes=bench.n_classes,
                        hidden=[8])
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                     train_mb_size=16, train_epochs=1,
                     plugins=[SparseGrowPlugin(growth={{"grow_at": 0.5}})],
                     evaluator=None, device="cpu")
    for experience in bench.train_stream:
        strategy.train(experience)
    GrowthPlugin(), FreezingPlugin()
    print(sorted(m for m in sys.modules if m.split(".")[0] == "sparsegrow"
                 and m.split(".")[1:2] in (["config"], ["runner"], ["report"], ["cli"])))
""").format(harness=HARNESS)


def test_core_trains_a_growing_model_without_the_experiment_harness():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"      # no harness module of sparsegrow


def test_a_command_of_the_harness_names_the_extra_when_it_is_missing(tmp_path):
    script = SCRIPT.split("import torch")[0] + (
        "from sparsegrow.cli import main\n"
        f"sys.exit(main(['run', {str(tmp_path / 'exp.yaml')!r}]))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr == ("error: sparsegrow run needs the experiment harness (omegaconf is "
                           "not installed): pip install 'sparsegrow[experiments]'\n")
