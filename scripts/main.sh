#!/usr/bin/env bash
# README command 1 (after `make install`): build the offline umedpt-mini database, pretrain a small UMedPT on its
# pretraining tasks with `accelerate launch`, save it, evaluate its frozen features on the held-out tasks against a
# random-init encoder at 1 %...100 % of the labels, and print a report. About 15 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${VENV:-.venv}/bin
DATA=${UMEDPT_DATA_DIR:-cache/umedpt-mini}
OUT=${UMEDPT_OUT:-outputs/umedpt_mini}
CONFIG=${UMEDPT_CONFIG:-examples/configs/umedpt_mini.yaml}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_VERBOSITY=error TOKENIZERS_PARALLELISM=false
export MPLBACKEND=Agg
started=$(date +%s)
stamp() { echo "[$(( $(date +%s) - started ))s] $*"; }

stamp "1/4 building the umedpt-mini task database in $DATA"
"$BIN/umedpt" data build --out "$DATA"

stamp "2/4 pretraining ($CONFIG) into $OUT"
"$BIN/accelerate" launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no \
  examples/pretrain.py --config "$CONFIG" "data.database=$DATA" "output_dir=$OUT"

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

stamp "4/4 data-scarcity evaluation on the held-out tasks"
# the two held-out tasks, plus modality_cls as an in-domain (pretraining) task for the paper's in-domain claim
"$BIN/umedpt" evaluate --model "$OUT/final" --data "$DATA" --compare random --out "$OUT/evaluation" --quiet \
  --tasks mni152_lobe_cls xray_bodypart_cls modality_cls

mkdir -p benchmarks/results
cp "$OUT/evaluation/data_scarcity.json" "$OUT/evaluation/data_scarcity.png" benchmarks/results/
if [ -f "$OUT/evaluation/target.json" ]; then
  cp "$OUT/evaluation/target.json" benchmarks/results/data_scarcity_target.json
fi

stamp "done"
echo
echo "Model:    $OUT/final  (AutoModel.from_pretrained loads it; add trust_remote_code=True without umedpt_hf)"
echo "Results:  benchmarks/results/data_scarcity.json and data_scarcity.png"
echo
cat "$OUT/evaluation/data_scarcity.md"
if [ -f "$OUT/evaluation/target.json" ]; then "$BIN/python" -m json.tool "$OUT/evaluation/target.json"; fi
