"""Placement on a simulated multi-node GPU cluster (ray.cluster_utils.Cluster, fake GPUs):
each role lands where the config says. Runs in its own process: a process joins one cluster."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, ray
from ray.cluster_utils import Cluster
from cluster.config import load_experiment
from common.placement import in_bundle, reserve, role_specs

cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "resources": {"head": 1}})
trainer = cluster.add_node(num_cpus=4, num_gpus=2, resources={"trainer_node": 1})
rollout = cluster.add_node(num_cpus=4, num_gpus=2, resources={"rollout_node": 1})
ray.init(address=cluster.address)
cfg = load_experiment(None, [
    "learner.num_ranks=2", "learner.gpus_per_rank=1",
    "placement.learner_resources={trainer_node: 0.01}",
    "rollout.num_workers=2", "rollout.gpus_per_worker=1", "rollout.weight_sync=nccl",
    "placement.rollout_resources={rollout_node: 0.01}",
    "rollout.env_actors=2", "placement.env_resources={head: 0.01}",
    "rollout.verifier_actors=1",
])

@ray.remote
class Probe:
    def where(self):
        ctx = ray.get_runtime_context()
        return ctx.get_node_id(), ray.get_gpu_ids()

names = {trainer.node_id: "trainer", rollout.node_id: "rollout",
         cluster.head_node.node_id: "head"}
out = {}
for role, spec in role_specs(cfg).items():
    if role == "rollout":  # one placement group per worker, as the fleet makes them
        groups = [(reserve(spec, 1, name=f"w{i}"), 0) for i in range(spec.count)]
    else:
        pg = reserve(spec)
        groups = [(pg, i) for i in range(spec.count)]
    probes = [Probe.options(**in_bundle(pg, i, spec)).remote() for pg, i in groups]
    out[role] = [(names[n], len(g)) for n, g in ray.get([p.where.remote() for p in probes])]
print("RESULT" + json.dumps(out))
ray.shutdown()
cluster.shutdown()
"""


def test_roles_land_on_the_nodes_the_config_names() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("RESULT")]
    assert lines, result.stderr[-4000:]
    placed = json.loads(lines[-1][len("RESULT") :])
    assert placed["learner"] == [["trainer", 1], ["trainer", 1]]  # 1 GPU each, trainer node
    assert placed["rollout"] == [["rollout", 1], ["rollout", 1]]
    assert placed["env"] == [["head", 0], ["head", 0]]
    assert len(placed["verifier"]) == 1 and placed["verifier"][0][1] == 0
