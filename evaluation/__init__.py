"""Held-out ID/OOD evaluation, compute accounting, reports and figures.

config.py     EvaluationConfig (suites, episodes, pinned sampling, schedule, VIter sweep)
metrics.py    episodes -> suite metrics (success, first try, recognition, step accuracy, ...)
stats.py      Rate: a success count with its binomial error bar
flops.py      ComputeMeter: 6ND training + 2ND inference FLOPs, saved as compute.json
evaluator.py  Evaluator: plays the suites on a fleet, records curve points and VIter sweeps
report.py     report.json / report.md per run; compare_runs for several runs
plots.py      the PNG figures (curves vs GFLOPs, gains from init, recognition, VIter)
run.py        evaluate one model on its own workers (`veriray run`, `veriray eval`)

Nothing is imported here, so `evaluation.config` stays importable without torch or ray.
"""
