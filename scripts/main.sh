#!/usr/bin/env bash
# `make main` (after `make install`): build the offline umedpt-mini task database, pretrain a small UMedPT on its
# pretraining tasks with `accelerate launch`, check that the saved model loads, evaluate its frozen features against a
# random-init encoder at 1 %...100 % of the labels, and print the results table once.
# Writes only under $DATA (cache/umedpt-mini) and $OUT (outputs/umedpt_mini), including $OUT/main_job.json (seed,
# machine, step durations). `make results` runs this and then copies the results into benchmarks/results/.
# Extra arguments are pretraining overrides, e.g. `bash scripts/main.sh training.max_steps=20` for a quick try.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${VENV:-.venv}/bin
DATA=${UMEDPT_DATA_DIR:-cache/umedpt-mini}
OUT=${UMEDPT_OUT:-outputs/umedpt_mini}
CONFIG=${UMEDPT_CONFIG:-examples/configs/umedpt_mini.yaml}
SEED=${UMEDPT_SEED:-0}
# the held-out tasks, plus modality_cls as an in-domain (pretraining) task for the paper's in-domain claim
EVAL_TASKS=(mni152_lobe_cls xray_bodypart_cls modality_cls)
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_VERBOSITY=error TOKENIZERS_PARALLELISM=false
export MPLBACKEND=Agg PYTHONUNBUFFERED=1   # unbuffered: printed lines and progress lines keep their order in a log
if [ ! -t 2 ]; then   # a log, not a terminal: no bar redraws from the libraries (evaluation prints a line per loop)
  export HF_HUB_DISABLE_PROGRESS_BARS=1 HF_DATASETS_DISABLE_PROGRESS_BARS=1
fi

started=$(date +%s)
step_started=$started
STEPS=()
stamp() { echo "[$(( $(date +%s) - started ))s] $*"; }
step_done() { local now; now=$(date +%s); STEPS+=("$1=$(( now - step_started ))"); step_started=$now; }

stamp "seed $SEED: pretraining training.seed=$SEED, evaluation --seed $SEED (label subsets, random-init weights)"

stamp "1/4 building the umedpt-mini task database in $DATA"
"$BIN/umedpt" data build --out "$DATA"
step_done build

stamp "2/4 pretraining ($CONFIG${*:+ $*}) into $OUT"
"$BIN/accelerate" launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no \
  examples/pretrain.py --config "$CONFIG" "data.database=$DATA" "output_dir=$OUT" "training.seed=$SEED" --overwrite "$@"
step_done pretrain

stamp "3/4 checking the saved model loads with AutoModel"
"$BIN/python" - "$OUT/final" <<'PY'
import sys

import torch
from transformers import AutoImageProcessor, AutoModel

import umedpt_hf  # noqa: F401

model = AutoModel.from_pretrained(sys.argv[1]).eval()
processor = AutoImageProcessor.from_pretrained(sys.argv[1])
pixel_values = processor(torch.rand(1, 96, 96).numpy(), modality="mri", return_tensors="pt")["pixel_values"]
print(f"{type(model).__name__} from {sys.argv[1]}: pooler_output {tuple(model(pixel_values).pooler_output.shape)}")
PY
step_done load_check

stamp "4/4 data-scarcity evaluation: ${EVAL_TASKS[*]}"
"$BIN/umedpt" evaluate --model "$OUT/final" --data "$DATA" --compare random --seed "$SEED" \
  --out "$OUT/evaluation" --tasks "${EVAL_TASKS[@]}"
step_done evaluate

"$BIN/python" scripts/main_job_record.py "$OUT/main_job.json" --seed "$SEED" --config "$CONFIG" \
  --overrides "$*" --steps "${STEPS[@]}"

stamp "done"
echo "Model:    $OUT/final  (AutoModel.from_pretrained loads it; add trust_remote_code=True without umedpt_hf)"
echo "Results:  $OUT/evaluation/ (data_scarcity.json, .png, .md, target.json); run record: $OUT/main_job.json"
echo "          \`make results\` copies them into benchmarks/results/ and regenerates the tables in README and BENCHMARKS"
