# Shared by small_tasks.sh and image_tasks.sh (sourced, not run): the variants of a task's
# config, and training + evaluation that skip finished runs and resume interrupted ones.
# The caller sets PY (python) and tmp (a scratch folder) and runs from the repository root.

variants() {   # $1 task config, $2 run prefix, $3 checkpoint interval, $4.. memory kinds with
               # a shipped configs/$1_KIND.yaml: writes $tmp/$2.yaml (TrXL), $2_gtrxl,
               # $2_nomem (memory_length 1) and $2_KIND for each kind
  local config=$1 prefix=$2 interval=$3
  shift 3
  cp "configs/$config.yaml" "$tmp/$prefix.yaml"
  # GTrXL's gates come with its identity-map reordering (Parisotto et al. 2019): pre-norm.
  sed -e 's/gtrxl: false/gtrxl: true/' -e 's/layer_norm: post/layer_norm: pre/' \
    "configs/$config.yaml" > "$tmp/${prefix}_gtrxl.yaml"
  sed -E 's/memory_length: [0-9]+/memory_length: 1/' "configs/$config.yaml" > "$tmp/${prefix}_nomem.yaml"
  for kind in "$@"; do cp "configs/${config}_$kind.yaml" "$tmp/${prefix}_$kind.yaml"; done
  for f in "$tmp/$prefix"*.yaml; do echo "checkpoint_interval: $interval" >> "$f"; done
}

train() {      # $1 variant, $2 seeds, $3.. evaluate.py options: each seed trained (to
               # TASK_UPDATES updates when set, else the config's), then evaluated
  local seed run budget=()
  [ -n "${TASK_UPDATES:-}" ] && budget=(--updates "$TASK_UPDATES")
  for seed in $2; do
    run="$1_seed$seed"
    # Scores newer than the model: evaluated after its last training, nothing to do.
    [ "models/$run/scores.csv" -nt "models/$run.nn" ] && continue
    if [ -f "models/$run.nn" ]; then
      "$PY" train.py --resume "$run" "${budget[@]}"
    else
      "$PY" train.py --config "$tmp/$1.yaml" --run-id "$run" --seed "$seed" "${budget[@]}"
    fi
    "$PY" evaluate.py "$run" "${@:3}"
  done
}
