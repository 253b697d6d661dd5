"""Helpers below every component: typed configs, project paths, placement groups, ports.

Imports run along the data flow (pyproject.toml, [tool.importlinter]): common/ imports no other
veriray package, and every package may import it. Components (envs, verifier, rollout,
learner, evaluation) never import cluster/, so what they share with the controller lives here.
"""
