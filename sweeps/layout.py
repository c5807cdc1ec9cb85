"""Where a sweep's files go: the runs' files as train.py and evaluate.py name them
(runs.paths), under the sweep's own folders, plus each point's config and each trial's log."""
from __future__ import annotations

import os
from dataclasses import dataclass

from runs import paths


@dataclass(frozen=True)
class Layout:
    """Where a sweep's files go; absolute paths, since Ray workers run elsewhere."""
    name: str
    models: str
    summaries: str
    results: str

    def model(self, run: str) -> str:
        return paths.model_file(self.models, run)

    def scores(self, run: str) -> str:
        return paths.scores_file(self.models, run)

    def log(self, run: str) -> str:
        return os.path.join(self.models, "logs", f"{run}.log")

    def point_config(self, label: str) -> str:
        return os.path.join(self.models, "configs", f"{label}.yaml")
