"""Score files and their statistics, computed with rliable: what aggregate.py, the notebook
and scripts/breakdown.py use (`import evaluation as ev`).

One job per module, in the order the data flow through them:
- `scores`: score files (evaluate.py writes one row per episode) and run scores (one per
  evaluated checkpoint), breakdowns by an episode column, earlier aggregations' run scores;
- `matrices`: run scores normalised by each task's score range, as rliable's arrays
  (runs, tasks) per algorithm;
- `statistics`: point estimates with stratified bootstrap confidence intervals, performance
  profiles, probabilities of improvement, sample-efficiency curves;
- `tables`: the aggregate table as text, Markdown and CSV;
- `plots`: matplotlib figures of all of the above.

The names below are the package's interface; each is defined in the module that says so.
"""
from evaluation.matrices import (KNOWN_MAX_SCORES, ScoreMatrices, known_max_scores, normalise,
                                 parse_max_scores, parse_min_scores, score_matrices)
from evaluation.plots import (algorithm_colors, plot_aggregates, plot_breakdown,
                              plot_performance_profile, plot_probability_of_improvement,
                              plot_sample_efficiency)
from evaluation.scores import (EPISODE_COLUMNS, RUN_SCORE_COLUMNS, algorithm_of, breakdown,
                               check_metric, final_scores, load_scores, merge_earlier,
                               metric_columns, read_run_scores, read_score_file, run_scores)
from evaluation.statistics import (AGGREGATES, DEFAULT_CONFIDENCE, DEFAULT_PROFILE_REPS,
                                   DEFAULT_REPS, PAIR_SEPARATOR, AggregateTable, Estimate,
                                   Improvement, PerformanceProfile, SampleEfficiency,
                                   aggregate_estimates, check_pairs, curve_arrays,
                                   iqm_per_point, performance_profile,
                                   probability_of_improvement, sample_efficiency,
                                   seeded_numpy, tau_grid)
from evaluation.tables import describe, table_frame, table_markdown, table_text

__all__ = [
    "AGGREGATES", "DEFAULT_CONFIDENCE", "DEFAULT_PROFILE_REPS", "DEFAULT_REPS",
    "EPISODE_COLUMNS", "KNOWN_MAX_SCORES", "PAIR_SEPARATOR", "RUN_SCORE_COLUMNS",
    "AggregateTable", "Estimate", "Improvement", "PerformanceProfile", "SampleEfficiency",
    "ScoreMatrices", "aggregate_estimates", "algorithm_colors", "algorithm_of", "breakdown",
    "check_metric", "check_pairs", "curve_arrays", "describe", "final_scores",
    "iqm_per_point", "known_max_scores", "load_scores", "merge_earlier", "metric_columns",
    "normalise", "parse_max_scores", "parse_min_scores", "performance_profile",
    "plot_aggregates", "plot_breakdown", "plot_performance_profile",
    "plot_probability_of_improvement", "plot_sample_efficiency",
    "probability_of_improvement", "read_run_scores", "read_score_file", "run_scores",
    "sample_efficiency", "score_matrices", "seeded_numpy", "table_frame", "table_markdown",
    "table_text", "tau_grid",
]
