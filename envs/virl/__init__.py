"""V-IRL navigation: routes, synthetic cities, street views, the expert and the environment.

Modules (light ones first; none imports torch or ray):
    config      VirlConfig: the typed task variant (its action spaces, reward table and
                scoring rule are the verifier's, in verifier.virl_rules)
    directions  headings, compass and relative turn labels (wrapped to (-180, 180])
    routes      Route/Place/Milestone and the loader for this project's data layout
    study_layout  routes in the study's release layout (route_infos.json as its code reads it)
    study_views   the study's street views: safe pickle mapping, panoramas, perspective crops
    styles      per-city look and naming
    city        the seeded synthetic city generator and the VLN-mini routes
    render      street views, the 2x2 grid, panoramas
    layout      save_released_layout: write routes in this project's data layout
    oracle      expert steps and JSON answers (SFT data)
    prompts     the text of every user turn
    pools       train/eval/vln_mini route pools, view sources, eval_tasks
    env         VirlEnv (gymnasium id "veriray/VIRL-v0")

The package imports only the config here, so importing it stays light.
"""

from envs.virl.config import VirlConfig
from verifier.virl_rules import VirlRewards

__all__ = ["VirlConfig", "VirlRewards"]
