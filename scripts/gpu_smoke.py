"""`make gpu-smoke`: the GPU paths on one GPU, offline, in minutes. PASS/FAIL per stage, and a
JSON file with each stage's seconds, details and the GPU memory in use after it.

Stages (a later stage that needs an earlier one's result is skipped when that one failed):
  0 preflight    CUDA is present, vLLM's platform is CUDA, versions, free space in /dev/shm
  1 assets       tiny-lm; a tiny random Mllama, converted to its text path (mllama_text.py)
  2 vllm         CUDA vLLM with torch.compile and CUDA graphs: GP episodes, finite log-probs,
                 one per token
  3 ppo          a PPO step on the GPU (ZeRO-3, bf16): finite loss and gradient norm, and the
                 weights change
  4 shm_sync     the shared-memory weight sync: every later turn carries the new version, and
                 the engine's log-probs match the learner's
  5 nccl         the NCCL receiver extension is loaded in the engine; with 3+ GPUs, the real
                 broadcast from 2 ZeRO-3 ranks (the gpu tests)
  6 mllama_text  the converted Mllama text path served by vLLM matches HF within 1e-3
  7 hf_image     the HF engine plays image (GP-VL) episodes on the GPU
  8 memory       a random model shaped like Llama-3.2-1B at 2k/4k/8k tokens, with and without
                 gradient checkpointing: bytes per token per layer, and the 8B peaks predicted

On a machine without CUDA it stops at stage 0 with what is missing. It has not run on a GPU in
this repository's history yet; docs/gpu-cluster.md says what has.

    python scripts/gpu_smoke.py [--out docs/results/gpu/smoke.json] [--stages 0,1,2]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout

GIB = 1024**3
NO_CUDA = (
    "no CUDA device: make gpu-smoke needs an NVIDIA GPU, its driver, a CUDA torch 2.13.0 and "
    "the gpu extra (pip install -e '.[gpu]'); on CPU machines run make test instead"
)


class Smoke:
    """Shared state between stages (assets, the fleet, the learner) and the results."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.state: dict[str, Any] = {}
        self.results: list[dict[str, Any]] = []

    def run(self, number: int, name: str, fn: Callable[[Smoke], dict[str, Any]]) -> bool:
        start = time.perf_counter()
        record: dict[str, Any] = {"stage": number, "name": name}
        try:
            record |= {"status": "PASS", "details": fn(self)}
        except SkipStage as skip:
            record |= {"status": "SKIP", "details": {"reason": str(skip)}}
        except Exception as err:  # a failed stage is reported, the next ones still try
            record |= {"status": "FAIL", "error": f"{type(err).__name__}: {err}"}
            record["traceback"] = traceback.format_exc(limit=8)
        record["seconds"] = round(time.perf_counter() - start, 2)
        record["gpu_used_gib"] = _gpu_used_gib()
        self.results.append(record)
        print(f"[{record['status']}] {number} {name} ({record['seconds']} s)", flush=True)
        if record["status"] == "FAIL":
            print(f"       {record['error']}", flush=True)
        return record["status"] == "PASS"

    def need(self, key: str) -> Any:
        if key not in self.state:
            raise SkipStage(f"needs {key} from an earlier stage, which did not pass")
        return self.state[key]


class SkipStage(Exception):
    pass


def _gpu_used_gib() -> float | None:
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        free, total = torch.cuda.mem_get_info()
        return round((total - free) / GIB, 2)
    except Exception:
        return None


# ---------------------------------------------------------------------------- stages
def preflight(s: Smoke) -> dict[str, Any]:
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError(NO_CUDA)
    import transformers
    import vllm
    from vllm.platforms import current_platform

    if not current_platform.is_cuda():
        platform = current_platform.device_name
        raise RuntimeError(f"vLLM's platform is {platform}, not CUDA: {NO_CUDA}")
    shm = shutil.disk_usage("/dev/shm") if Path("/dev/shm").is_dir() else None
    return {
        "gpu": torch.cuda.get_device_name(0),
        "gpus": torch.cuda.device_count(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "vllm": vllm.__version__,
        "transformers": transformers.__version__,
        "dev_shm_free_gib": round(shm.free / GIB, 1) if shm else None,
    }


def assets(s: Smoke) -> dict[str, Any]:
    from learner.assets import prepare
    from learner.assets.mllama_text import convert

    s.state["tiny_lm"] = prepare("tiny-lm")
    s.state["tiny_vlm"] = prepare("tiny-vlm")
    mllama = tiny_mllama(s.workdir / "tiny-mllama")
    s.state["mllama_text"] = convert(mllama, s.workdir / "tiny-mllama-text")
    return {"mllama_text": str(s.state["mllama_text"])}


def tiny_mllama(dst: Path) -> Path:
    """A random Mllama with tiny-lm's tokenizer: enough for the conversion and its check."""
    from transformers import AutoTokenizer, MllamaConfig, MllamaForConditionalGeneration

    from learner.assets import prepare

    tokenizer = AutoTokenizer.from_pretrained(prepare("tiny-lm"))
    vocab = len(tokenizer)
    config = MllamaConfig(
        vision_config={
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_global_layers": 1,
            "attention_heads": 2,
            "intermediate_size": 64,
            "image_size": 28,
            "patch_size": 14,
            "max_num_tiles": 4,
            "intermediate_layers_indices": [0],
            "vision_output_dim": 64,
        },
        text_config={
            "hidden_size": 64,
            "num_hidden_layers": 3,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "intermediate_size": 128,
            "vocab_size": vocab + 1,  # + the image token; Mllama adds 8 rows of its own
            "pad_token_id": 0,
            "cross_attention_layers": [1],
            "max_position_embeddings": 2048,
        },
        image_token_index=vocab,
    )
    MllamaForConditionalGeneration(config).save_pretrained(dst)
    tokenizer.save_pretrained(dst)
    return dst


def _task() -> dict[str, Any]:
    from envs.families import config_dict
    from envs.generalpoints.config import GeneralPointsConfig

    return config_dict(GeneralPointsConfig(num_cards=2, target_mode="one_op", viter=2))


def _specs(prefix: str, n: int, task: dict[str, Any]) -> list[Any]:
    from envs.families import family
    from rollout.runner import EpisodeSpec

    options = family("generalpoints").eval_reset_options(task, n, 0)
    return [EpisodeSpec(f"{prefix}{i}", "generalpoints", task, o) for i, o in enumerate(options)]


def vllm_episodes(s: Smoke) -> dict[str, Any]:
    import ray

    from cluster.ray_config import RayConfig
    from cluster.ray_runtime import init_ray
    from rollout.config import RolloutConfig
    from rollout.fleet import RolloutFleet

    model = s.need("tiny_lm")
    if not ray.is_initialized():
        init_ray(RayConfig(num_cpus=4, num_gpus=1))
    cfg = RolloutConfig(
        max_model_len=1024,
        max_new_tokens=24,
        gpus_per_worker=0.5,  # the learner takes the other half in stage 3
        gpu_memory_utilization=0.3,
        enforce_eager=False,  # torch.compile and CUDA graphs
        dtype="bfloat16",
    )
    start = time.perf_counter()
    fleet = RolloutFleet(model, cfg, False, s.workdir / "images")
    started = time.perf_counter() - start
    s.state["fleet"], s.state["task"] = fleet, _task()
    results = fleet.play(_specs("v", 8, s.state["task"]))
    turns = [t for r in results for t in r.turns]
    for t in turns:
        if len(t.behaviour_logprobs) != len(t.response_token_ids):
            raise AssertionError("a turn's log-probs are not one per token")
        if not all(math.isfinite(x) for x in t.behaviour_logprobs):
            raise AssertionError("non-finite log-probs")
    s.state["episodes"] = results
    return {"engine_start_s": round(started, 1), "episodes": len(results), "turns": len(turns)}


def ppo_step(s: Smoke) -> dict[str, Any]:
    import pyarrow as pa

    from learner.config import LearnerConfig
    from learner.group import LearnerGroup
    from rollout.trajectory import to_record_batch

    episodes = s.need("episodes")
    cfg = LearnerConfig(
        gpus_per_rank=0.5, zero_stage=3, dtype="bfloat16", lr=1e-4, micro_batch_size=4
    )
    group = LearnerGroup(cfg, str(s.need("tiny_lm")))
    s.state["group"] = group
    before = group.param_digests()
    table = pa.Table.from_batches([to_record_batch([t for r in episodes for t in r.turns])])
    metrics = group.train_ppo(table)
    after = group.param_digests()
    loss = metrics.get("learner/policy_loss", float("nan"))
    norm = metrics.get("learner/grad_norm", float("nan"))
    if not (math.isfinite(loss) and math.isfinite(norm)):
        raise AssertionError(f"loss {loss}, gradient norm {norm}")
    if after == before:
        raise AssertionError("the weights did not change")
    return {"policy_loss": loss, "grad_norm": norm}


def shm_sync(s: Smoke) -> dict[str, Any]:
    from learner.batching import TrainRow
    from learner.weight_sync import SharedMemoryTransport

    fleet, group = s.need("fleet"), s.need("group")
    transport = SharedMemoryTransport(group, fleet, "gpu-smoke")
    try:
        version = group.policy_version()
        timing = transport.sync(version)
        from rollout.engine import Sampling

        greedy = Sampling(max_new_tokens=24, temperature=0.0, top_p=1.0)
        after = fleet.play(_specs("s", 4, s.state["task"]), sampling=greedy)
        turns = [t for r in after for t in r.turns]
        if any(t.policy_version != version for t in turns):
            raise AssertionError("a turn after the sync is not tagged with the new version")
        rows = [
            TrainRow(t.prompt_token_ids, t.response_token_ids, [True] * len(t.response_token_ids),
                     [False] * len(t.response_token_ids))
            for t in turns
        ]  # fmt: skip
        learner = group.score(rows)
        diffs = [
            abs(a - b)
            for la, t in zip(learner, turns, strict=True)
            for a, b in zip(la, t.behaviour_logprobs, strict=True)
        ]
        worst = max(diffs)
        if worst > 5e-2:  # bf16 engine vs bf16 learner
            raise AssertionError(f"engine and learner log-probs differ by up to {worst:.3g}")
        return {"max_logprob_diff": worst, "sync_s": round(timing["timing/weight_sync"], 3)}
    finally:
        transport.close()


def nccl(s: Smoke) -> dict[str, Any]:
    import subprocess

    import torch

    from rollout.weight_receiver import WORKER_EXTENSION

    module, _, cls = WORKER_EXTENSION.rpartition(".")
    extension = getattr(__import__(module, fromlist=[cls]), cls)
    details: dict[str, Any] = {"extension": extension.__name__}
    if torch.cuda.device_count() < 3:
        details["broadcast"] = "not run: needs 3 GPUs (2 ZeRO-3 learner ranks + 1 engine)"
        return details
    test = "tests/integration/test_weight_sync.py"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", test, "-q", "-m", "gpu"], cwd=ROOT, timeout=480
    )
    if result.returncode != 0:
        raise AssertionError(f"{test} -m gpu failed")
    details["broadcast"] = "PASS"
    return details


def mllama_text(s: Smoke) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from vllm import LLM, SamplingParams

    path = s.need("mllama_text")
    tokenizer = AutoTokenizer.from_pretrained(path)
    prompt = tokenizer("Cards: 5, 7. Target 12.")["input_ids"]
    hf = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).cuda().eval()
    with torch.no_grad():
        logits = hf(torch.tensor([prompt]).cuda()).logits[0, -1].float()
    hf_lp = torch.log_softmax(logits, -1)
    llm = LLM(str(path), dtype="float32", gpu_memory_utilization=0.15, enforce_eager=True)
    out = llm.generate(
        [{"prompt_token_ids": prompt}], SamplingParams(max_tokens=1, temperature=0, logprobs=5)
    )[0]
    diffs = [abs(lp.logprob - float(hf_lp[tok])) for tok, lp in out.outputs[0].logprobs[0].items()]
    del llm
    if max(diffs) > 1e-3:
        raise AssertionError(f"vLLM and HF top log-probs differ by up to {max(diffs):.3g}")
    return {"max_logprob_diff": max(diffs)}


def hf_image(s: Smoke) -> dict[str, Any]:
    from envs.families import config_dict
    from envs.generalpoints.config import GeneralPointsConfig
    from rollout.config import RolloutConfig
    from rollout.fleet import RolloutFleet

    task = config_dict(
        GeneralPointsConfig(num_cards=2, target_mode="one_op", viter=2, observation_mode="image")
    )
    cfg = RolloutConfig(backend="hf", gpus_per_worker=0.2, max_model_len=1024, max_new_tokens=16)
    fleet = RolloutFleet(s.need("tiny_vlm"), cfg, True, s.workdir / "images-hf")
    try:
        results = fleet.play(_specs("i", 2, task))
    finally:
        fleet.shutdown()
    if not all(t.image_ref for r in results for t in r.turns[:1]):
        raise AssertionError("the first turn of an image episode has no image")
    return {"episodes": len(results)}


def memory(s: Smoke) -> dict[str, Any]:
    """Peak memory of one forward+backward of a random Llama-3.2-1B-shaped model (bf16)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    for key in ("fleet", "group"):  # free the GPU for the probe
        if key in s.state:
            s.state.pop(key).shutdown()
    config = LlamaConfig(
        hidden_size=2048, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
        intermediate_size=8192, vocab_size=128256, max_position_embeddings=8192,
    )  # fmt: skip
    model = LlamaForCausalLM(config).to(torch.bfloat16).cuda()
    out: dict[str, Any] = {}
    for checkpointing in (False, True):
        if checkpointing:
            model.gradient_checkpointing_enable({"use_reentrant": False})
        for tokens in (2048, 4096, 8192):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            ids = torch.randint(0, config.vocab_size, (1, tokens), device="cuda")
            # Only the hidden states: the learner computes log-probs in chunks, not full logits.
            hidden = model.model(input_ids=ids).last_hidden_state
            hidden.float().square().mean().backward()
            peak = torch.cuda.max_memory_allocated() - base
            model.zero_grad(set_to_none=True)
            per = peak / tokens / config.num_hidden_layers
            out[f"{'ckpt' if checkpointing else 'full'}_{tokens}"] = {
                "peak_gib": round(peak / GIB, 2),
                "bytes_per_token_per_layer": round(per),
            }
    # An 8B Llama (hidden 4096, 32 layers): activations scale with hidden x layers.
    scale = (4096 / 2048) * (32 / 16)
    for mode in ("full", "ckpt"):
        per_token = out[f"{mode}_8192"]["peak_gib"] / 8192 * scale
        out[f"predicted_8b_activations_gib_{mode}"] = {
            n: round(per_token * n, 1) for n in (4096, 16384)
        }
    return out


STAGES: list[tuple[str, Callable[[Smoke], dict[str, Any]]]] = [
    ("preflight", preflight),
    ("assets", assets),
    ("vllm", vllm_episodes),
    ("ppo", ppo_step),
    ("shm_sync", shm_sync),
    ("nccl", nccl),
    ("mllama_text", mllama_text),
    ("hf_image", hf_image),
    ("memory", memory),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="docs/results/gpu/smoke.json", help="the JSON report")
    parser.add_argument("--stages", default="", help="comma-separated stage numbers (default all)")
    args = parser.parse_args(argv)
    wanted = {int(x) for x in args.stages.split(",") if x.strip()} or set(range(len(STAGES)))
    workdir = Path(tempfile.mkdtemp(prefix="veriray-gpu-smoke-"))  # private, 0700
    smoke = Smoke(workdir)
    try:
        for number, (name, fn) in enumerate(STAGES):
            if number not in wanted:
                continue
            passed = smoke.run(number, name, fn)
            if number == 0 and not passed:
                break  # nothing else can run without CUDA
    finally:
        for key in ("fleet", "group"):
            if key in smoke.state:
                smoke.state.pop(key).shutdown()
        shutil.rmtree(workdir, ignore_errors=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "stages": smoke.results}
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    failed = [r for r in smoke.results if r["status"] == "FAIL"]
    print(f"{'FAIL' if failed else 'PASS'}: report in {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
