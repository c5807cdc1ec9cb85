"""Plots of the statistics, each a matplotlib Figure that the caller shows or saves: the
aggregates with their confidence intervals, performance profiles, sample-efficiency curves,
probabilities of improvement and score breakdowns."""
from __future__ import annotations

from typing import Iterable, Optional

import numpy as np
import pandas as pd
from rliable import plot_utils

from evaluation.statistics import (PAIR_SEPARATOR, AggregateTable, Improvement,
                                   PerformanceProfile, SampleEfficiency)


def algorithm_colors(algorithms: Iterable[str]) -> dict[str, tuple]:
    """One colour per algorithm, the same in every plot."""
    names = sorted(set(algorithms))
    return dict(zip(names, _palette(len(names))))


def _palette(n: int) -> list[tuple]:
    import seaborn as sns
    return sns.color_palette("colorblind", n_colors=max(n, 1))


def _score_label(metric: str, normalised: bool) -> str:
    return f"{metric} (normalised)" if normalised else metric


def _set_score_range(ax, low: float, high: float, normalised: bool) -> None:
    """Normalised scores are shown on at least [0, 1], so that a narrow interval near 1 looks
    narrow and near 1 rather than filling the axis; raw ones get wide margins. Fewer, smaller
    tick labels than rliable's, which collide when the values need several digits."""
    from matplotlib.ticker import MaxNLocator
    if normalised:
        low, high = min(0.0, low), max(1.0, high)
    pad = (0.05 if normalised else 0.25) * (high - low) if high > low else 0.5
    ax.set_xlim(low - pad, high + pad)
    ax.xaxis.set_major_locator(MaxNLocator(4))
    ax.tick_params(axis="x", labelsize="large")


def plot_aggregates(table: AggregateTable, colors: Optional[dict] = None):
    algorithms = list(table.estimates)
    points = {a: np.array([e.point for e in table.estimates[a].values()]) for a in algorithms}
    intervals = {a: np.array([[e.low for e in table.estimates[a].values()],
                              [e.high for e in table.estimates[a].values()]])
                 for a in algorithms}
    fig, axes = plot_utils.plot_interval_estimates(
        points, intervals, metric_names=table.aggregates, algorithms=algorithms,
        colors=colors or algorithm_colors(algorithms),
        xlabel=_score_label(table.metric, table.normalised),
        # rliable sizes the figure by rows; one or two algorithms need taller rows
        row_height=max(0.45, 1.6 / len(algorithms)), xlabel_y_coordinate=-0.25)
    for i, ax in enumerate(np.atleast_1d(axes)):
        lows = [intervals[a][0, i] for a in algorithms]
        highs = [intervals[a][1, i] for a in algorithms]
        _set_score_range(ax, min(lows), max(highs), table.normalised)
    height = fig.get_size_inches()[1]   # above the subplot titles, whatever the height
    fig.suptitle(f"Final {table.metric}: point estimate and {table.confidence:.0%} "
                 f"bootstrap CI ({', '.join(table.tasks)})", y=1 + 0.5 / height,
                 fontsize="xx-large")
    return fig


def plot_performance_profile(profile: PerformanceProfile, colors: Optional[dict] = None):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    plot_utils.plot_performance_profiles(
        profile.profiles, profile.taus, performance_profile_cis=profile.intervals,
        colors=colors or algorithm_colors(profile.profiles), ax=ax,
        xlabel=rf"{_score_label(profile.metric, profile.normalised)} ($\tau$)",
        ylabel=r"fraction of runs with score > $\tau$", labelsize="large",
        ticklabelsize="large", legend=True, legendsize="large")
    ax.set_title(f"Performance profile of the final {profile.metric}", fontsize="x-large")
    return fig


def plot_sample_efficiency(curves: SampleEfficiency, colors: Optional[dict] = None):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter
    colors = colors or algorithm_colors(curves.iqm)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for algorithm in curves.iqm:   # one call each: the algorithms may have other step counts
        plot_utils.plot_sample_efficiency_curve(
            curves.steps[algorithm], curves.iqm, curves.intervals, algorithms=[algorithm],
            colors=colors, ax=ax, xlabel="environment steps",
            ylabel=f"IQM of {_score_label(curves.metric, curves.normalised)}",
            labelsize="large", ticklabelsize="large")
    ax.xaxis.set_major_formatter(EngFormatter())
    # Below the axes, not inside: inside, the legend hid a checkpoint of the Mystery Path
    # curve, and no corner is free for every task's curves.
    ax.legend(fontsize="large", loc="upper center", bbox_to_anchor=(0.5, -0.2),
              ncol=min(3, len(curves.iqm)), frameon=False)
    ax.set_title(f"Sample efficiency: IQM of {curves.metric} with 95% CIs", fontsize="x-large")
    return fig


def plot_breakdown(table: pd.DataFrame, metric: str, by: str):
    """One panel per run: `metric` against environment steps, a line per value of `by`, with
    +-1 standard error bars (the table of breakdown())."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter
    runs = sorted(table["run"].unique())
    fig, axes = plt.subplots(1, len(runs), figsize=(5.5 * len(runs), 4.5), sharey=True,
                             squeeze=False)
    values = sorted(table[by].unique())
    colors = dict(zip(values, _palette(len(values))))
    for ax, run in zip(axes[0], runs):
        for value, group in table[table["run"] == run].groupby(by):
            ax.errorbar(group["steps"], group["score"], yerr=group["standard_error"],
                        marker="o", capsize=3, color=colors[value], label=f"{by} {value:g}")
        ax.set_title(run, fontsize="x-large")
        ax.set_xlabel("environment steps", fontsize="large")
        ax.xaxis.set_major_formatter(EngFormatter())
    axes[0][0].set_ylabel(metric, fontsize="large")
    axes[0][0].legend(fontsize="medium", loc="upper center", bbox_to_anchor=(0.5, -0.2),
                      ncol=min(3, len(values)), frameon=False)
    fig.suptitle(f"{metric} by {by}, +-1 standard error", fontsize="xx-large", y=1.02)
    return fig


def plot_probability_of_improvement(improvements: list[Improvement]):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 1.2 + 0.6 * len(improvements)))
    plot_utils.plot_probability_of_improvement(
        {f"{i.x}{PAIR_SEPARATOR}{i.y}": i.estimate.point for i in improvements},
        {f"{i.x}{PAIR_SEPARATOR}{i.y}": np.array([i.estimate.low, i.estimate.high])
         for i in improvements},
        pair_separator=PAIR_SEPARATOR, ax=ax, xticks=[0.0, 0.25, 0.5, 0.75, 1.0],
        xlabel="P(X > Y)")
    ax.set_xlim(0.0, 1.0)
    ax.axvline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_title("Probability of improvement, with 95% CIs", fontsize="x-large", pad=30)
    return fig
