"""Sweeps: seeds x configurations trained as Ray tasks, then evaluated and aggregated
(sweep.py is the command line).

One job per module: `layout` (where a sweep's files go), `grid` (--grid axes, their points
and each point's config), `plan` (which trials are left: finished runs are skipped, saved
runs checked against their point's config), `trial` (one trial in a Ray worker: train.py
then evaluate.py as child processes), `progress` (the console's progress line), `cluster`
(Ray: joining or starting it, submitting, following and cancelling the trials) and `lock`
(one sweep.py per sweep folder).
"""
