#!/usr/bin/env bash
# Fetches the two implementations benchmarks/side_by_side.sh compares against, at the commits
# the patches in benchmarks/patches/ were made against, applies the patches, and installs the
# packages they import that this project does not into a folder of their own.
#
#   benchmarks/prepare_originals.sh DEST
#
# DEST/original and DEST/cleanrl are the checkouts, DEST/site the extra packages; the script
# prints the side_by_side.sh command that uses them. Their code is never stored in this
# repository. ORIGINAL_REPO and CLEANRL_REPO override where the repositories are cloned from
# (a URL or a local clone with the commits below).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
dest=${1:?usage: benchmarks/prepare_originals.sh DEST}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
python=${PYTHON:-$root/.venv/bin/python}

ORIGINAL_REPO=${ORIGINAL_REPO:-https://github.com/MarcoMeter/episodic-transformer-memory-ppo}
ORIGINAL_COMMIT=acc5cb2e0cdc87bd7b5ce857d270a72a66146e0b
CLEANRL_REPO=${CLEANRL_REPO:-https://github.com/vwxyzjn/cleanrl}
CLEANRL_COMMIT=fe8d8a03c41a7ef5b523e2e354bd01c363e786bb

# checkout REPO COMMIT DIR PATCH PATHSPEC...: only the code (the original's pre-trained
# models are large and not needed), then the patch.
checkout() {
  local repo=$1 commit=$2 dir=$3 patch=$4
  shift 4
  rm -rf "$dir"
  git clone --quiet --no-checkout "$repo" "$dir"
  git -C "$dir" checkout --quiet "$commit" -- "$@"
  git -C "$dir" apply --whitespace=nowarn "$patch"
  echo "$dir: $commit with $(basename "$patch")"
}
checkout "$ORIGINAL_REPO" "$ORIGINAL_COMMIT" "$dest/original" "$here/patches/original.patch" \
  . ':!models'
checkout "$CLEANRL_REPO" "$CLEANRL_COMMIT" "$dest/cleanrl" "$here/patches/cleanrl.patch" \
  cleanrl/ppo_trxl

# Their imports beyond this project's packages; this venv's own typing_extensions and pygments
# stay in charge (the copies pip puts beside tyro would shadow them).
"$python" -m pip install --quiet --target "$dest/site" einops docopt ruamel.yaml reprint tblib \
  "tyro<0.10"
rm -rf "$dest"/site/typing_extensions* "$dest"/site/pygments*

cat <<EOF
ready. Measure with:
  SBS_PYTHONPATH=$dest/site benchmarks/side_by_side.sh $dest/original $dest/cleanrl --out side_by_side.txt
EOF
