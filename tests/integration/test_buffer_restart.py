"""The replay buffer killed during a real quick run: Ray restarts it from its journal, the RL
arm never notices (no restart from a checkpoint), and every update trains exactly the episodes
it played, none lost and none twice.

The kill is real (SIGKILL of the buffer actor's process, found by its Ray process title) and
waits for an event: the first episode written to the buffer's journal."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.quick_demo import quick_demo_args, run_and_kill_on_event

UPDATES, EPISODES_PER_UPDATE = 3, 8  # quick_demo_args sets rl.episodes_per_update=8


def test_a_killed_buffer_comes_back_with_every_episode(tmp_path: Path) -> None:
    run_dir = tmp_path / "quick"
    code, output = run_and_kill_on_event(
        quick_demo_args(tmp_path, f"rl.updates={UPDATES}"),
        tmp_path / "job.log",
        lambda: next(run_dir.glob("buffer-journal-*/add-*.parquet"), None) is not None,
        "ray::ReplayBufferActor",
    )
    assert code == 0, output[-4000:]
    assert "starting again" not in output  # the arm went on; only the buffer restarted

    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    per_update = {r["step"]: r for r in rows if "rollout/episodes_delta" in r}
    assert sorted(per_update) == list(range(1, UPDATES + 1))
    last = per_update[UPDATES]
    assert last["buffer/restarts"] == 1
    played = UPDATES * EPISODES_PER_UPDATE
    assert sum(r["rollout/episodes_delta"] for r in per_update.values()) == played
    assert last["buffer/total_added"] == last["buffer/total_consumed"] == played
    turns = sum(
        round(r["rollout/turns_mean"] * r["rollout/episodes_delta"]) for r in per_update.values()
    )
    state = json.loads(
        (run_dir / "checkpoints" / f"update-{UPDATES:06d}" / "trainer_state.json").read_text()
    )
    assert state["consumed_samples"] == turns  # every played turn trained once
    assert not list(run_dir.glob("buffer-journal-*"))  # closed at the end of the arm
