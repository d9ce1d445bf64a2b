"""`sparsegrow bench gpu`: its comparison, sections and the CPU dry run end to end."""

import json
import math
import sys
import time
from pathlib import Path

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.training import Naive

from sparsegrow import cli
from sparsegrow.bench.gpu.agreement import Tolerance, compare
from sparsegrow.bench.gpu.cuda_tests import cuda_tests
from sparsegrow.bench.gpu.sections import run_section
from sparsegrow.runner.amp import amp_template

sys.path.insert(0, str(Path(__file__).parent.parent / "plugins"))
from plugin_streams import mlp, quiet_evaluator, synthetic_stream  # noqa: E402

TOL = Tolerance(rtol=1e-3, atol=1e-5)


def test_compare_holds_within_tolerance_and_fails_beyond_it():
    reference = {"w": torch.tensor([1.0, 100.0]), "b": torch.zeros(3)}
    near = {"w": torch.tensor([1.0 + 5e-4, 100.0 + 5e-2]), "b": torch.full((3,), 5e-6)}
    result = compare(reference, near, TOL)
    assert result["ok"] and result["problems"] == []
    assert result["max_abs_diff"] == pytest.approx(5e-2, rel=1e-4) and result["worst"] == "w"
    far = {"w": torch.tensor([1.0 + 2e-3, 100.0]), "b": torch.zeros(3)}   # 2e-3 > 1e-5 + 1e-3
    result = compare(reference, far, TOL)
    assert not result["ok"] and result["problems"][0].startswith("w: max |diff| 0.002")
    assert result["max_abs_diff"] == pytest.approx(2e-3, rel=1e-4)


@pytest.mark.parametrize("other, problem", [
    ({"w": torch.ones(2, 2)}, "w: shape (2,) vs (2, 2)"),
    ({}, "w: only in the reference"),
    ({"w": torch.ones(2), "v": torch.ones(1)}, "v: only in the other"),
    ({"w": torch.tensor([1.0, math.nan])}, "w: max |diff| inf"),
])
def test_compare_fails_on_shape_missing_names_and_nan(other, problem):
    result = compare({"w": torch.ones(2)}, other, TOL)
    assert not result["ok"] and problem in result["problems"]


def test_a_section_that_raises_or_runs_too_long_is_recorded_not_raised():
    def boom():
        raise RuntimeError("no kernel image is available")

    result = run_section(boom, timeout=10)
    assert result["status"] == "error" and "RuntimeError: no kernel image" in result["error"]
    start = time.perf_counter()
    result = run_section(lambda: time.sleep(5), timeout=0.2)
    assert time.perf_counter() - start < 2
    assert result["status"] == "error" and "SectionTimeout" in result["error"]
    assert run_section(lambda: {"ok": False}, timeout=10)["status"] == "failed"


CUDA_TESTS = """
import pytest

@pytest.mark.cuda
def test_passes():
    pass

@pytest.mark.cuda
def test_fails():
    assert False

def test_not_cuda():
    assert False
"""


def test_cuda_tests_section_counts_only_cuda_marked_tests(tmp_path):
    # outside the project's tests/ the marker is not auto-skipped: both CUDA tests run here
    path = tmp_path / "test_some_cuda.py"
    path.write_text(CUDA_TESTS)
    result = cuda_tests([str(path)], require_passes=True)
    assert (result["passed"], result["failed"], result["errors"]) == (1, 1, 0)
    assert not result["ok"] and "test_fails" in result["output_tail"]
    path.write_text(CUDA_TESTS.replace("assert False", "pass"))
    assert cuda_tests([str(path)], require_passes=True)["ok"]


class _RecordDtype(SupervisedPlugin):
    def __init__(self):
        super().__init__()
        self.outputs, self.weights = set(), set()

    def after_forward(self, strategy, **kwargs):
        self.outputs.add(strategy.mb_output.dtype)
        self.weights.update(p.dtype for p in strategy.model.parameters())


def test_autocast_strategy_runs_forward_in_bfloat16_and_keeps_float32_weights():
    stream = synthetic_stream(n_experiences=1)
    record, model = _RecordDtype(), mlp()
    strategy = amp_template(Naive, "bf16")(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1), train_mb_size=32,
        plugins=[record], evaluator=quiet_evaluator())
    before = [p.detach().clone() for p in strategy.model.parameters()]
    strategy.train(stream.train_stream[0])
    assert record.outputs == {torch.bfloat16} and record.weights == {torch.float32}
    assert strategy.scaler is None          # bfloat16 needs no loss scaling
    assert any(not torch.equal(b, p) for b, p in zip(before, strategy.model.parameters()))


def test_without_cuda_the_command_says_so_in_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli.main(["bench", "gpu", "--out", str(tmp_path / "gpu.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no CUDA device") and "--dry-run" in err
    assert err.count("\n") == 1 and not (tmp_path / "gpu.json").exists()


def test_dry_run_runs_every_section_on_the_cpu_and_writes_their_numbers(tmp_path, capsys):
    tests = tmp_path / "test_cuda_only.py"
    tests.write_text(CUDA_TESTS.replace("assert False", "pass"))
    out = tmp_path / "gpu.json"
    # tiny sizes: a 4-channel ResNet-18, 32 samples per experience; on 100 test samples a
    # 5-point accuracy margin is noise, so the margin is opened (the AMP numbers are still read)
    assert cli.main(["bench", "gpu", "--dry-run", "--out", str(out), "--tests", str(tests),
                     "--override", "++model.width=4", "--train-subset", "32",
                     "--amp-margin", "1"]) == 0
    report = json.loads(out.read_text())
    sections = report["sections"]
    assert report["ok"] and report["dry_run"] and list(sections) == [
        "cuda_tests", "agreement", "timing", "amp"]
    assert all(s["status"] == "ok" and s["seconds"] > 0 for s in sections.values())
    assert sections["cuda_tests"]["passed"] == 2
    for check in ("growth", "on_data", "protected_step"):
        # CPU against CPU through the same code: the same arithmetic, bit for bit
        assert sections["agreement"][check]["max_abs_diff"] == 0.0
        assert sections["agreement"][check]["rtol"] > 0 and sections["agreement"][check]["atol"] > 0
    on_data = sections["agreement"]["on_data"]
    # one float32 ulp of jitter moves this small problem's on-data init (the measured spread)
    assert on_data["cpu_spread_at_jitter"] > 0
    assert on_data["atol"] == max(1e-4, 10 * on_data["cpu_spread_at_jitter"])
    step = sections["agreement"]["protected_step"]
    assert 0 <= step["old_input_change_cpu"] <= step["old_input_atol"]
    timing = sections["timing"]["strategies"]
    assert set(timing) == {"naive", "sparsegrow"}
    assert timing["sparsegrow"]["growth_events"] >= 1 and timing["naive"]["growth_events"] == 0
    assert all(t["train_s"] > 0 and len(t["per_experience_s"]) == 2 for t in timing.values())
    passes = timing["sparsegrow"]["plugin_timings_s"]
    assert timing["naive"]["plugin_timings_s"] == {} and passes["growth"] > 0
    assert sum(passes.values()) < timing["sparsegrow"]["train_s"]
    assert math.isfinite(timing["sparsegrow"]["time_ratio"]) and timing["naive"]["time_ratio"] == 1
    bf16 = sections["amp"]["autocast"]["bfloat16"]
    assert bf16["growth_events"] >= 1 and math.isfinite(bf16["final_loss"])
    # the loss of every iteration was traced (the strategy's own is zero once training ends)
    assert bf16["finite_losses"] and bf16["iterations"] >= 2 and bf16["final_loss"] > 0
    for run in (bf16, sections["amp"]["float32"]):
        assert len(run["accuracy_per_experience"]) == 2
        assert all(0 <= a <= 1 for a in run["accuracy_per_experience"])
    printed = capsys.readouterr().out
    assert all(f"| {name} | ok |" in printed for name in sections)
