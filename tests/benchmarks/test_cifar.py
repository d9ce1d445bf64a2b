"""CIFAR loaders read files in torchvision's real on-disk format, written here, tiny."""

import hashlib
import os
import pickle

import numpy as np
import pytest
from torchvision.datasets import CIFAR10, CIFAR100

from sparsegrow.benchmarks import DatasetNotFoundError, build_benchmark


def _md5(path):
    return hashlib.md5(open(path, "rb").read()).hexdigest()


def _write(path, n, n_classes, label_key, rng):
    data = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            label_key: [int(i % n_classes) for i in range(n)]}
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return _md5(path)


def _fake_cifar(root, cls, monkeypatch, *, n_classes, n=40):
    """Write the files torchvision reads and point its checksum table at them (the table holds
    the md5 of the real 160 MB files; the reading code path is the real one)."""
    rng = np.random.default_rng(0)
    folder = root / cls.base_folder
    folder.mkdir(parents=True)
    label_key = "labels" if cls is CIFAR10 else "fine_labels"
    train = [[name, _write(folder / name, n, n_classes, label_key, rng)]
             for name, _ in cls.train_list]
    test = [[name, _write(folder / name, n // 2, n_classes, label_key, rng)]
            for name, _ in cls.test_list]
    meta_key = cls.meta["key"]
    with open(folder / cls.meta["filename"], "wb") as f:
        pickle.dump({meta_key: [f"c{i}" for i in range(n_classes)]}, f)
    monkeypatch.setattr(cls, "train_list", train)
    monkeypatch.setattr(cls, "test_list", test)
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": _md5(folder / cls.meta["filename"])})


@pytest.mark.parametrize("cls,name,n_classes,n_exp", [
    (CIFAR10, "split_cifar10", 10, 5), (CIFAR100, "split_cifar100", 100, 10)])
def test_split_cifar_reads_real_format(tmp_path, monkeypatch, cls, name, n_classes, n_exp):
    _fake_cifar(tmp_path, cls, monkeypatch, n_classes=n_classes, n=n_classes * 2)
    bench = build_benchmark(name, root=str(tmp_path), n_experiences=n_exp,
                            class_order=list(range(n_classes)))
    assert len(bench.train_stream) == n_exp and bench.input_shape == (3, 32, 32)
    x, y, t = bench.train_stream[0].dataset[0]
    assert x.shape == (3, 32, 32) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert y < n_classes // n_exp and t == 0
    assert sorted(bench.train_stream[1].classes_in_this_experience) == \
        list(range(n_classes // n_exp, 2 * n_classes // n_exp))


def test_missing_cifar_says_where_and_how(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        build_benchmark("split_cifar10", root=str(tmp_path / "nowhere"))
    message = str(err.value)
    assert os.path.abspath(tmp_path / "nowhere") in message and "download=True" in message


def test_env_var_sets_the_data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSEGROW_DATA", str(tmp_path / "envroot"))
    with pytest.raises(DatasetNotFoundError, match="envroot"):
        build_benchmark("split_cifar100")


def test_train_subset_is_per_experience(tmp_path, monkeypatch):
    _fake_cifar(tmp_path, CIFAR10, monkeypatch, n_classes=10, n=20)  # 10 per class
    order = [7, 2, 9, 0, 1, 3, 4, 5, 6, 8]
    bench = build_benchmark("split_cifar10", root=str(tmp_path), class_order=order,
                            train_subset=3)
    for k, exp in enumerate(bench.train_stream):
        assert len(exp.dataset) == 3
        assert set(exp.dataset.targets.uniques) <= set(order[2 * k:2 * k + 2])


def test_download_without_internet_is_missing_data(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar
    from urllib.error import URLError

    def offline(*args, **kwargs):
        raise URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", offline)
    with pytest.raises(DatasetNotFoundError, match="Name or service not known"):
        build_benchmark("split_cifar10", root=str(tmp_path), download=True)
