"""Avalanche's classic generators by name."""

import pytest

from sparsegrow.benchmarks import build_benchmark
from sparsegrow.errors import ConfigError, DatasetNotFoundError


def test_unknown_classic_generator_suggests_a_name():
    with pytest.raises(ConfigError, match="did you mean .*SplitCIFAR100"):
        build_benchmark("classic:SplitCIFAR101")


def test_classic_generator_without_data_or_internet_fails_with_one_message(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="classic:SplitCIFAR10 could not load"):
        build_benchmark("classic:SplitCIFAR10", n_experiences=5, dataset_root=str(tmp_path))


def test_classic_generator_wrong_keyword_is_a_config_error():
    with pytest.raises(ConfigError, match="classic:SplitCIFAR10"):
        build_benchmark("classic:SplitCIFAR10", n_experiencez=5)


def test_a_bug_inside_a_generator_is_not_reported_as_missing_data(monkeypatch):
    import avalanche.benchmarks.classic as classic

    def broken(**kwargs):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(classic, "SplitMNIST", broken)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        build_benchmark("classic:SplitMNIST")
