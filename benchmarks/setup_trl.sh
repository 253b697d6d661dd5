#!/usr/bin/env bash
# The TRL baseline's own environment (benchmarks/.venv-trl), apart from veriray's .venv.
#
# Same torch as veriray (2.13.0, the CPU wheel) and the same transformers (5.19.0), so the
# end-to-end comparison differs only in the training system. TRL never enters veriray's
# environment. The GeneralPoints reward comes from veriray's own verifier (pure Python, numpy,
# Pillow, gymnasium), imported from the repository on PYTHONPATH by bench_e2e_trl's TRL side.
# Idempotent: a complete environment (stamp file present) is left as it is.
#
# Usage: bash benchmarks/setup_trl.sh   (PYTHON=python3.11 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=benchmarks/.venv-trl
STAMP="$VENV/.complete"
TORCH=2.13.0
TRANSFORMERS=5.19.0
TRL=1.16.0
if [[ -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "torch=$TORCH transformers=$TRANSFORMERS trl=$TRL" ]]; then
  echo "$VENV is up to date"
  exit 0
fi
PY="${PYTHON:-python3.11}"
pip_install() {  # quiet, minus the notes about local index folders this machine's pip prints
  "$VENV/bin/pip" install -q "$@" 2>&1 | { grep -v "is ignored: it is neither" || true; }
  return "${PIPESTATUS[0]}"
}
echo "setup_trl: creating $VENV with $PY (torch $TORCH, transformers $TRANSFORMERS, trl $TRL)"
rm -rf "$VENV"
"$PY" -m venv "$VENV"
# torch first and alone: the pinned CPU wheel (pip's find-links here, as for .venv).
pip_install "torch==$TORCH"
pip_install "torch==$TORCH" "transformers==$TRANSFORMERS" "trl==$TRL" gymnasium numpy pillow
"$VENV/bin/python" - <<'PY'
import sys
import torch, transformers, trl
if torch.version.cuda:
    sys.exit("setup_trl: a CUDA build of torch got into benchmarks/.venv-trl; it must be the CPU wheel")
print(f"TRL env: torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}")
PY
echo "torch=$TORCH transformers=$TRANSFORMERS trl=$TRL" > "$STAMP"
