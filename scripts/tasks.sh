# Shared by small_tasks.sh and image_tasks.sh (sourced, not run): the variants of a task's
# config, training + evaluation that skip finished runs and resume interrupted ones, and the
# aggregation of a task's variants.
# The caller sets PY (python) and tmp (a scratch folder) and runs from the repository root;
# STEP_TIMEOUT (seconds), when set, goes into every variant's config.

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
  for f in "$tmp/$prefix"*.yaml; do
    echo "checkpoint_interval: $interval" >> "$f"
    # A background job paused by a benchmark window must not read as a hung environment.
    if [ -n "${STEP_TIMEOUT:-}" ]; then echo "step_timeout: $STEP_TIMEOUT" >> "$f"; fi
  done
}

finished() {   # $1 run, $2 variant: has models/$1.nn trained its budget (TASK_UPDATES when
               # set, else the variant config's updates)?
  "$PY" - "models/$1.nn" "$tmp/$2.yaml" "${TASK_UPDATES:-}" <<'EOF'
import sys
from config import load_config
from runs.checkpoint import load_model_file
payload, _ = load_model_file(sys.argv[1])
budget = int(sys.argv[3]) if sys.argv[3] else load_config(sys.argv[2]).updates
sys.exit(0 if payload["update"] >= budget else 1)
EOF
}

train() {      # $1 variant, $2 seeds, $3.. evaluate.py options: each seed trained (to
               # TASK_UPDATES updates when set, else the config's), then evaluated
  local seed run budget=()
  [ -n "${TASK_UPDATES:-}" ] && budget=(--updates "$TASK_UPDATES")
  for seed in $2; do
    run="$1_seed$seed"
    # Evaluated after its last training, and trained to the budget: nothing to do. A larger
    # budget than the model's extends the run, and evaluates it again.
    [ "models/$run/scores.csv" -nt "models/$run.nn" ] && finished "$run" "$1" && continue
    if [ -f "models/$run.nn" ] || compgen -G "models/$run/update_*.nn" > /dev/null; then
      "$PY" train.py --resume "$run" "${budget[@]}"
    else
      # No checkpoint: an attempt stopped before its first one left at most summaries/RUN/.
      "$PY" train.py --config "$tmp/$1.yaml" --run-id "$run" --seed "$seed" --overwrite \
        "${budget[@]}"
    fi
    "$PY" evaluate.py "$run" "${@:3}"
  done
}

has_runs() {   # $1 variant, $2 earlier run_scores.csv: any scored run of it, now or earlier?
               # (whatever the algorithm column says: an aggregation may have renamed it)
  compgen -G "models/$1_seed*/scores.csv" > /dev/null || grep -q "^[^,]*,$1_seed" "$2" 2> /dev/null
}

aggregate_task() {  # $1 run prefix, $2 output folder, $3.. aggregate.py's metric options: the
                    # variants that have scores, TrXL vs each. The folder's run_scores.csv keeps
                    # the runs of earlier checkouts (models/ is not committed): they are aggregated
                    # with today's, and a run evaluated again replaces its earlier scores.
  local earlier="$2/run_scores.csv" scores=() compares=() with=() v
  [ -f "$earlier" ] && with=(--earlier "$earlier")
  for v in "" _gtrxl _nomem _gru; do
    has_runs "$1$v" "$earlier" || continue
    compgen -G "models/$1${v}_seed*/scores.csv" > /dev/null \
      && scores+=(models/"$1$v"_seed*/scores.csv)
    [ -n "$v" ] && has_runs "$1" "$earlier" && compares+=(--compare "$1" "$1$v")
  done
  [ ${#scores[@]} -gt 0 ] || [ ${#with[@]} -gt 0 ] || return 0
  "$PY" aggregate.py "${scores[@]}" "${with[@]}" "${compares[@]}" "${@:3}" --out "$2"
}
