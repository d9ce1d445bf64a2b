from pathlib import Path

import pytest

from sparsegrow.cli import main


def test_config_error_is_one_line_exit_2(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\ntraining:\n  optimizer: rmsprop\n")
    assert main(["run", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err == (f"error: {path}: training.optimizer: Invalid value 'rmsprop', "
                            "expected one of [sgd, adam, adamw]\n")
    assert "Traceback" not in captured.out + captured.err


def test_missing_file_and_bad_override(tmp_path, capsys):
    assert main(["run", str(tmp_path / "none.yaml")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'none.yaml'}: file not found\n"
    experiment = Path(__file__).resolve().parents[1] / "experiments" / "quickstart.yaml"
    assert main(["run", str(experiment), "training.epochs=zero"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: command line: training.epochs:") and err.count("\n") == 1


def test_bench_dispatch(capsys):
    assert main(["bench", "no_such_script"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown benchmark script 'no_such_script'")
    assert "growth_cost" in err


def test_usage_error_exits_2():
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
