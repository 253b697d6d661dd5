"""The TRL side of bench_e2e_trl: GRPOTrainer on CPU, run in TRL's own environment.

Runs in ``benchmarks/.venv-trl`` (``benchmarks/setup_trl.sh``: the same torch 2.13.0 CPU wheel
and transformers 5.19.0 as veriray, plus trl), with the repository on PYTHONPATH for the
GeneralPoints env and verifier only (pure Python, numpy, Pillow, gymnasium; nothing of Ray,
vLLM or DeepSpeed is imported). bench_e2e_trl.py writes the job file: the model folder, the
prompts of every update (the same dealt tasks veriray plays), batch shape and sampling.

The reward of a completion is exactly veriray's: a GeneralPoints env reset to the task and
stepped with the completion (the verifier's reward plus the env's budget penalty).

Job switches: ``gradient_checkpointing`` false (the benchmark's main runs: no recomputed
activations) or null (TRL's default, on); ``use_vllm`` true generates through vLLM in TRL's
colocate mode instead of transformers ``generate`` (needs vllm in benchmarks/.venv-trl).
The settings TRL ends up with are written back (``effective_config``).

Usage (bench_e2e_trl.py runs it):
  benchmarks/.venv-trl/bin/python benchmarks/trl_grpo.py JOB.json OUT.json
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path


def main(job_path: str, out_path: str) -> None:
    import torch
    import transformers
    import trl
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from envs.families import family

    job = json.loads(Path(job_path).read_text())
    if job.get("threads"):
        torch.set_num_threads(job["threads"])
    fam = family("generalpoints")
    task_config = job["task_config"]

    def gp_reward(prompts, completions, task_state, **_) -> list[float]:
        rewards = []
        for completion, state in zip(completions, task_state, strict=True):
            text = completion[-1]["content"] if isinstance(completion, list) else completion
            env = fam.make_env(task_config)
            env.reset(options={"task_state": json.loads(state)})
            _, reward, *_ = env.step(text)
            rewards.append(float(reward))
        return rewards

    # One row per task; TRL repeats each num_generations times (its group), in this order.
    rows = [
        {"prompt": [{"role": "user", "content": p["text"]}], "task_state": p["task_state"]}
        for update in job["prompts"]
        for p in update
    ]
    dataset = Dataset.from_list(rows)

    class StepTimes(TrainerCallback):
        def __init__(self) -> None:
            self.ends: list[float] = []

        def on_train_begin(self, args, state, control, **kwargs):
            self.begin = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.ends.append(time.perf_counter())

    batch, micro = job["episodes_per_update"], job["micro_batch_size"]
    # Only what the job sets explicitly; None leaves TRL's default in place.
    optional: dict = {}
    if job.get("gradient_checkpointing") is not None:
        optional["gradient_checkpointing"] = job["gradient_checkpointing"]
    if job.get("use_vllm"):
        optional |= {"use_vllm": True, "vllm_mode": "colocate"}
    args = GRPOConfig(
        output_dir=str(Path(out_path).parent / "trl-out"),
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=batch // micro,
        num_generations=job["samples_per_task"],
        max_completion_length=job["max_new_tokens"],
        temperature=job["temperature"],
        top_p=1.0,
        learning_rate=job["lr"],
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        beta=0.0,
        num_iterations=1,
        max_steps=job["updates"],
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        bf16=job["bf16"],
        use_cpu=True,
        shuffle_dataset=False,
        seed=0,
        dataloader_num_workers=0,
        disable_tqdm=True,
        **optional,
    )
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(job["model_path"], dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(job["model_path"])
    timer = StepTimes()
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=gp_reward,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[timer],
    )
    setup_s = time.perf_counter() - t0
    trainer.train()
    history = [h for h in trainer.state.log_history if "loss" in h or "reward" in h]
    ends = [timer.begin, *timer.ends]
    step_s = [b - a for a, b in itertools.pairwise(ends)]
    out = {
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "trl": trl.__version__,
        },
        "threads": torch.get_num_threads(),
        "effective_config": {
            k: getattr(trainer.args, k, None)
            for k in ("gradient_checkpointing", "use_vllm", "vllm_mode", "bf16", "loss_type")
        },
        "setup_s": setup_s,
        "step_s": step_s,
        "log_history": history,
    }
    Path(out_path).write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
