"""A learner rank killed mid-run: the RL arm starts again by itself from its newest complete
checkpoint, and the final policy has trained every update's episodes exactly once.

The kill is real (SIGKILL of the rank's process, found by its Ray process title) and waits for
an event: the first checkpoint sealed on disk."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.quick_demo import quick_demo_args, run_and_kill_on_event


def test_a_killed_learner_rank_is_rebuilt_from_the_last_checkpoint(tmp_path: Path) -> None:
    run_dir = tmp_path / "quick"
    first = run_dir / "checkpoints" / "update-000001" / "COMPLETE.json"
    code, output = run_and_kill_on_event(
        quick_demo_args(tmp_path, "rl.updates=3", "evaluation.every_k_updates=1"),
        tmp_path / "job.log",
        first.is_file,
        "ray::LearnerRank",
    )
    assert code == 0, output[-4000:]
    assert "an actor died" in output and "starting again from update-000001" in output

    checkpoints = run_dir / "checkpoints"
    state = {
        u: json.loads((checkpoints / f"update-00000{u}" / "trainer_state.json").read_text())
        for u in (1, 3)
    }
    assert state[3]["policy_version"] == 3
    # The final lineage: update 1 from before the kill, then updates 2 and 3 as last played.
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    last = {r["step"]: r for r in rows if "rollout/turns_mean" in r}
    turns = {
        u: round(last[u]["rollout/turns_mean"] * last[u]["rollout/episodes_delta"]) for u in (2, 3)
    }
    assert state[3]["consumed_samples"] == state[1]["consumed_samples"] + turns[2] + turns[3]
    points = [json.loads(line) for line in (run_dir / "eval_points.jsonl").read_text().splitlines()]
    assert [p["step"] for p in points if p["stage"] == "rl"] == [1, 2, 3]
