import json
from pathlib import Path

import pytest
import yaml

from sparsegrow.cli import main
from sparsegrow.errors import ConfigError
from sparsegrow.runner.launch import expand, launch, plan_jobs


def test_expand_sweeps_the_stored_and_the_command_line_keys():
    points, swept, hydra_args = expand(
        ["seed=0,1", "strategy=naive", "training.lr=choice(0.1,0.2)", "hydra/launcher=joblib",
         "hydra.launcher.n_jobs=2", "strategy.plugins.sparsegrow.subspace_energy={fc1: 0.5}"],
        stored={"seed": "5,6", "benchmark.n_experiences": "range(2,4)"})
    assert swept == ["seed", "benchmark.n_experiences", "training.lr"]
    assert hydra_args == ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    assert len(points) == 8
    assert points[0] == ["seed=0", "benchmark.n_experiences=2", "strategy=naive",
                         "training.lr=0.1",
                         "strategy.plugins.sparsegrow.subspace_energy={fc1: 0.5}"]
    assert points[-1][:2] == ["seed=1", "benchmark.n_experiences=3"]


@pytest.mark.parametrize("override, message", [
    ("+training.lr=1", "command line: training.lr: '+' and '~' are not needed"),
    ("training.lr=interval(0,1)", "command line: training.lr: only lists, range() and choice()"),
    ("training.lr=[1", "command line: training.lr=[1:"),
])
def test_bad_sweep_syntax_is_one_line(override, message):
    with pytest.raises(ConfigError) as info:
        expand([override])
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_every_sweep_point_is_validated_before_any_job(make_experiment, capsys):
    path = make_experiment(strategies=["naive", "sparsegrow"])
    with pytest.raises(ConfigError) as info:
        plan_jobs(path, ["strategy.plugins.sparsegrow.subspace_energy=0.9,1.5"])
    assert str(info.value).startswith(
        "command line: strategy.plugins.sparsegrow: subspace energy must be a fraction")
    assert main(["run", str(path), "--multirun", "seed=0,1", "training.epochs=1,0"]) == 2
    assert capsys.readouterr().err == (
        "error: command line: training.epochs: must be >= 1, got 0\n")
    assert not (path.parent.parent / "results").exists()       # nothing started


def test_bad_launcher_override_is_one_line_before_any_job(make_experiment, capsys):
    path = make_experiment()
    assert main(["run", str(path), "hydra/launcher=jobib"]) == 2
    assert capsys.readouterr().err == (
        "error: command line: In 'hydra/config': Could not find 'hydra/launcher/jobib' Available "
        "options in 'hydra/launcher': basic joblib submitit_local submitit_slurm\n")
    assert main(["run", str(path), "hydra/launcher=joblib", "hydra.launcher.n_jobz=2"]) == 2
    assert capsys.readouterr().err == (
        "error: command line: Could not override 'hydra.launcher.n_jobz'.\n")
    assert not (path.parent.parent / "results" / "tiny" / "naive").exists()


def test_sweep_jobs_have_their_own_folders(make_experiment):
    path = make_experiment(strategies=["naive", "sparsegrow"], seeds=[0])
    jobs, _ = plan_jobs(path, ["seed=0,1,0", "training.lr=0.1,0.2",
                               "strategy.plugins.sparsegrow.subspace_energy=0.5"])
    runs = [(j.strategy, j.seed) for j in jobs]
    assert runs == [("naive,training.lr=0.1", 0),
                    ("sparsegrow,sparsegrow.subspace_energy=0.5,training.lr=0.1", 0),
                    ("naive,training.lr=0.2", 0),
                    ("sparsegrow,sparsegrow.subspace_energy=0.5,training.lr=0.2", 0),
                    ("naive,training.lr=0.1", 1),
                    ("sparsegrow,sparsegrow.subspace_energy=0.5,training.lr=0.1", 1),
                    ("naive,training.lr=0.2", 1),
                    ("sparsegrow,sparsegrow.subspace_energy=0.5,training.lr=0.2", 1)]
    with pytest.raises(ConfigError, match="would both write .*/tiny/naive/seed0$"):
        plan_jobs(path, ["logging.wandb.project=a,b"])    # not part of a run's name
    # a swept plugin keyword leaves the strategies without that plugin alone: one job each
    jobs, _ = plan_jobs(path, ["strategy.plugins.sparsegrow.subspace_energy=0.5,0.6"])
    assert [j.strategy for j in jobs] == ["naive", "sparsegrow,sparsegrow.subspace_energy=0.5",
                                          "sparsegrow,sparsegrow.subspace_energy=0.6"]


def test_experiment_file_sweep_and_its_override(make_experiment):
    path = make_experiment(strategies=["naive"])
    data = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**data, "sweep": {"seed": [0, 1], "training.lr": "0.1,0.2"}}))
    jobs, _ = plan_jobs(path, [])
    assert [(j.strategy, j.seed) for j in jobs] == [
        ("naive,training.lr=0.1", 0), ("naive,training.lr=0.2", 0),
        ("naive,training.lr=0.1", 1), ("naive,training.lr=0.2", 1)]
    jobs, _ = plan_jobs(path, ["seed=3", "training.lr=0.3"])
    assert [(j.strategy, j.seed) for j in jobs] == [("naive", 3)]


@pytest.mark.parametrize("gpus, device, expected", [
    (3, "auto", [0, 0, 0, 0]),      # one process (the basic launcher) keeps the GPU it claimed
    (3, "cuda", [0, 0, 0, 0]),
    (1, "auto", []),                # a job given one GPU (SLURM, CUDA_VISIBLE_DEVICES) keeps it
    (3, "cpu", []),
])
def test_launched_jobs_use_their_process_gpu(make_experiment, monkeypatch, tmp_path, gpus,
                                             device, expected):
    import torch

    import sparsegrow.runner.build as build_module
    import sparsegrow.runner.run as run_module

    monkeypatch.setattr(build_module, "GPU_CLAIMS", build_module.GpuClaims(tmp_path / "locks"))
    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setattr(run_module, "run_one", lambda plan, strategy, seed, **kw: (
        Path(f"{strategy}/seed{seed}"), True))     # what the job would train on: not needed
    path = make_experiment(device=device)
    jobs, hydra_args = plan_jobs(path, ["seed=0,1,2,3"])
    outcomes = launch(path, jobs, hydra_args)
    assert [o["folder"] for o in outcomes] == [f"naive/seed{k}" for k in range(4)]
    assert chosen == expected


def test_reused_workers_keep_their_own_gpu_and_never_pile_onto_one(tmp_path):
    from sparsegrow.runner.build import GpuClaims

    # two workers (each claims with its own lock file, as separate processes do) over 2 GPUs
    a, b = GpuClaims(tmp_path), GpuClaims(tmp_path)
    assert (a.gpu(0, 2), b.gpu(1, 2)) == (0, 1)
    # worker b finishes job 1 first and takes job 2 while a still trains job 0: job 2 mod 2
    # would be GPU 0, a's; b stays on GPU 1
    assert b.gpu(2, 2) == 1 and a.gpu(3, 2) == 0
    # a third worker finds both GPUs claimed and shares by its job number
    assert GpuClaims(tmp_path).gpu(5, 2) == 1
    # a worker that starts after another's exit (its lock released) gets the freed GPU
    b._held[1].close()
    assert GpuClaims(tmp_path).gpu(0, 2) == 1


def _matrix(run):
    return (run / "accuracy_matrix.csv").read_text()


def test_joblib_sweep_runs_every_job_and_a_diverging_one_fails_alone(make_experiment, capsys):
    path = make_experiment(strategies=["naive"], n_experiences=2)
    assert main(["run", str(path), "training.lr=0.05,50", "seed=0,1",
                 "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]) == 1
    err = capsys.readouterr().err
    exp = path.parent.parent / "results" / "tiny"
    for seed in (0, 1):
        good = exp / "naive,training.lr=0.05" / f"seed{seed}"
        assert json.loads((good / "metrics.json").read_text())["seed"] == seed
        bad = exp / "naive,training.lr=50" / f"seed{seed}"
        error = json.loads((bad / "failed.json").read_text())["error"]
        assert error.startswith(f"strategy naive,training.lr=50, seed {seed}, experience 0, ")
        assert f"failed: {error}\n" in err
    assert "error: 2 of 4 run(s) failed" in err
    summary = json.loads((exp / "summary.json").read_text())
    assert summary["naive,training.lr=0.05"]["seeds"] == [0, 1]
    assert summary["naive,training.lr=50"]["seeds"] == []
    # the same runs in this process give the same results
    assert main(["run", str(path), "training.lr=0.05", "seed=0,1",
                 "logging.output_dir=" + str(path.parent.parent / "inline")]) == 0
    for seed in (0, 1):
        assert _matrix(exp / "naive,training.lr=0.05" / f"seed{seed}") == \
            _matrix(path.parent.parent / "inline" / "tiny" / "naive" / f"seed{seed}")


def test_submitit_local_sweep_runs_every_job(make_experiment):
    path = make_experiment(strategies=["sparsegrow"], n_experiences=2)
    assert main(["run", str(path), "seed=0,1", "hydra/launcher=submitit_local",
                 "hydra.launcher.timeout_min=10"]) == 0
    exp = path.parent.parent / "results" / "tiny"
    summary = json.loads((exp / "summary.json").read_text())
    assert summary["sparsegrow"]["seeds"] == [0, 1]
    for seed in (0, 1):
        metrics = json.loads((exp / "sparsegrow" / f"seed{seed}" / "metrics.json").read_text())
        assert metrics["seed"] == seed and metrics["n_growth_events"] == 1
    logs = sorted(p.name for p in (exp / "launches").glob("*/.submitit/*/*_log.out"))
    assert len(logs) == 2                       # one submitit job each


def test_a_crashing_job_lets_the_others_run_and_the_summary_names_it(make_experiment,
                                                                     monkeypatch, capsys):
    import sparsegrow.runner.run as run_module

    real = run_module.run_one

    def crash_seed1(plan, strategy, seed, **kwargs):
        if seed == 1:
            raise RuntimeError("boom")
        return real(plan, strategy, seed, **kwargs)

    monkeypatch.setattr(run_module, "run_one", crash_seed1)
    path = make_experiment(seeds=[0, 1, 2], n_experiences=2)
    with pytest.raises(RuntimeError, match="boom"):
        main(["run", str(path)])
    exp = path.parent.parent / "results" / "tiny"
    summary = json.loads((exp / "summary.json").read_text())
    assert summary["naive"]["seeds"] == [0, 2]
    assert summary["naive"]["unfinished"] == {"seed1": "missing"}
    assert "not finished yet, left out of the summary: naive seed1" in capsys.readouterr().out
