#!/usr/bin/env bash
# Seconds per update of ours next to the original episodic-transformer-memory-ppo and CleanRL's
# ppo_trxl, interleaved, on an otherwise idle machine (docs/performance-method.md).
#
#   benchmarks/side_by_side.sh ORIGINAL_CHECKOUT CLEANRL_CHECKOUT [side_by_side.py options]
#   SBS_ORIGINAL=... SBS_CLEANRL=... SBS_PYTHONPATH=... benchmarks/side_by_side.sh [options]
#
# The checkouts are patched copies kept outside this repository (benchmarks/prepare_originals.sh
# makes them); SBS_PYTHONPATH names a folder with the packages they import that this project
# does not (einops, docopt, ruamel.yaml, reprint, tblib, tyro). On 2 cores a round of the small
# cases takes ~5 min, of the full configs (minigrid-16x512, mortar-32x512) ~20 min.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -ge 2 && $1 != -* && $2 != -* ]]; then
  export SBS_ORIGINAL=$1 SBS_CLEANRL=$2
  shift 2
fi
exec "${PYTHON:-.venv/bin/python}" benchmarks/side_by_side.py "$@"
