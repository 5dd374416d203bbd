#!/usr/bin/env bash
# The GPU rows of BENCHMARKS.md in one command (one CUDA GPU, about 8 minutes):
#   bash benchmarks/gpu_suite.sh                          -> benchmarks/results/gpu_suite.json + gpu_suite.png
#   bash benchmarks/gpu_suite.sh --device cpu --quick     -> the same sections on CPU, tiny preset (CI-size)
# Needs torch, transformers, accelerate (torchvision / timm optional) and nothing else installed: the repository's
# src/ goes on PYTHONPATH. Python: $PYTHON, else .venv/bin/python when present, else python3.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error TOKENIZERS_PARALLELISM=false MPLBACKEND=Agg
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON; elif [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
exec "$PY" benchmarks/gpu_suite.py "$@"
