"""Experiment runner: builds and runs every strategy × seed, writes results, plots and W&B
runs, checkpoints after every experience and resumes killed runs."""

from sparsegrow.runner.experiment import ExperimentResult, run_experiment
from sparsegrow.runner.run import run_dir, run_one

__all__ = ["ExperimentResult", "run_dir", "run_experiment", "run_one"]
