"""training.amp: bf16 / fp16 (GradScaler) runs on the CPU; off (or YAML's false) is float32."""

import json
from pathlib import Path

import pytest
import torch

from sparsegrow.config import load_experiment
from sparsegrow.errors import ConfigError
from sparsegrow.runner import run_one
from sparsegrow.runner.amp import AmpTraining, amp_template
from sparsegrow.runner.run import FAIL_AFTER_ENV, SimulatedKill


def test_off_and_yaml_false_leave_the_template_alone():
    from avalanche.training import Naive

    assert amp_template(Naive, "off") is Naive and amp_template(Naive, False) is Naive
    assert issubclass(amp_template(Naive, "bf16"), AmpTraining)


def test_an_unknown_precision_is_one_config_line(make_experiment):
    with pytest.raises(ConfigError, match="training.amp: must be one of off, bf16, fp16"):
        load_experiment(make_experiment(amp="fp8"))


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_sparsegrow_runs_under_amp_and_grows(make_experiment, amp):
    plan = load_experiment(make_experiment(strategies=["sparsegrow"], amp=amp))
    folder, ran = run_one(plan, "sparsegrow", 0)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert ran and metrics["n_growth_events"] == 2
    assert metrics["acc"] > 0.5   # 4 classes: it learned


def test_fp16_resume_restores_the_loss_scale(make_experiment, monkeypatch):
    """The checkpoint holds the GradScaler's state; a killed fp16 run resumes to the same
    result."""
    plan = load_experiment(make_experiment(strategies=["naive"], amp="fp16"))
    reference, _ = run_one(plan, "naive", 0)
    expected = (reference / "accuracy_matrix.csv").read_text()
    for path in reference.iterdir():
        path.unlink()
    monkeypatch.setenv(FAIL_AFTER_ENV, "0")
    with pytest.raises(SimulatedKill):
        run_one(plan, "naive", 0)
    saved = torch.load(reference / "checkpoint.pt", weights_only=False)
    assert saved["scaler"]["scale"] > 0
    monkeypatch.delenv(FAIL_AFTER_ENV)
    run_one(plan, "naive", 0)
    assert (reference / "accuracy_matrix.csv").read_text() == expected


def test_fp16_overflowing_steps_are_skipped_not_taken_for_divergence(make_experiment,
                                                                     monkeypatch):
    """A loss scale of 2⁴⁰ overflows float16 gradients: the GradScaler skips those steps and
    halves the scale; the divergence guard reads the unscaled loss and lets the run go on."""
    scaler = torch.amp.GradScaler
    monkeypatch.setattr(torch.amp, "GradScaler", lambda device: scaler(device, init_scale=2.0**40))
    plan = load_experiment(make_experiment(strategies=["sparsegrow"], amp="fp16"))
    monkeypatch.setenv(FAIL_AFTER_ENV, "0")
    with pytest.raises(SimulatedKill):   # stop after the first experience to read the scale
        run_one(plan, "sparsegrow", 0)
    folder = plan.experiment.logging.output_dir
    saved = torch.load(next(Path(folder).rglob("checkpoint.pt")), weights_only=False)
    assert saved["scaler"]["scale"] < 2.0**40   # steps were skipped
    monkeypatch.delenv(FAIL_AFTER_ENV)
    out, ran = run_one(plan, "sparsegrow", 0)
    assert ran and (out / "metrics.json").is_file() and not (out / "failed.json").exists()
