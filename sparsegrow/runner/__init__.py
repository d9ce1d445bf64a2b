"""Experiment runner: expands sweeps into one job per strategy × seed, launches them through a
Hydra launcher, runs each (checkpointed after every experience, resumed when killed, stopped
when it diverges), then writes summaries and plots.

Results of ``sparsegrow run experiments/<experiment>.yaml`` (``logging.output_dir``, default
``results``)::

    results/<experiment>/
      summary.json  summary.csv  summary.md     mean ± std over finished seeds, per strategy
                                                (and which runs are not finished, why)
      plots/        forgetting_<strategy>.png  heatmap_<strategy>.png
                    average_accuracy.png  growth_params.png
      wandb/        offline W&B runs (``wandb sync <folder>`` uploads one)
      launches/<time>/  Hydra's log of each job of a launch (and submitit's job files)
      <strategy>/seed<k>/
        config.yaml           experiment, preset and training settings as run
        accuracy_matrix.csv   R[i][j]: accuracy on experience j after training experience i
        timeline.csv          per experience: accuracies, parameters, train/eval seconds
                              (train excludes the GIFt metric's evaluations, time_gift_s),
                              plugin timings, widths, frozen fractions / subspace dims
        events.json           growth events: operations, parameters, widths, GIFt
        metrics.json          ACC, BWT, Forgetting, LA, GIFt, parameters, times (written last:
                              it marks the run finished; a rerun skips the run)
        checkpoint.pt         only while the run is unfinished: what a restart resumes from
        failed.json           only if the run diverged (non-finite or exploded loss, or a
                              non-finite parameter): the reason; the summaries
                              leave the run out and name it
"""

from sparsegrow.runner.launch import ExperimentResult, aggregate, launch, plan_jobs
from sparsegrow.runner.run import run_dir, run_one

__all__ = ["ExperimentResult", "aggregate", "launch", "plan_jobs", "run_dir", "run_one"]
