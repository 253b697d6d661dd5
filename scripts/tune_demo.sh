#!/usr/bin/env bash
# The demo's tuning on the validation suite (never the evaluation suites), as committed in
# docs/results/tune/: the warm start's length, then the RL arm's and the SFT arm's learning
# rates from the best warm start. About 50 minutes on 2 cores. `make tune` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
V=.venv/bin/python
OUT=${TUNE_OUT:-runs/tune}
veriray_tune() { $V -m cluster.cli tune configs/cpu/demo.yaml "output_dir=$OUT" "$@"; }

veriray_tune --set sft.examples=320,480
best=$($V -c "import json,sys; print(json.load(open(sys.argv[1]))['best']['value'])" \
  "$OUT/demo-tune-sft.examples/tune.json")
echo "tune: best warm start sft.examples=$best"
warm="$OUT/demo-tune-sft_examples-$best"
veriray_tune "sft.examples=$best" --set rl.lr=3e-6,1e-5 --from "$warm"
veriray_tune "sft.examples=$best" --set sft.arm_lr=1e-5,5e-5 --from "$warm" --sft-steps 60
for key in sft.examples rl.lr sft.arm_lr; do
  mkdir -p "docs/results/tune/$key"
  cp "$OUT/demo-tune-$key/"tune.{md,json,png} "docs/results/tune/$key/"
done
echo "tune: tables in docs/results/tune/*/tune.md"
