"""Tasks as gymnasium environments: GeneralPoints (card arithmetic) and V-IRL (navigation).

Importing this package registers the environments with gymnasium:
``gymnasium.make("veriray/GeneralPoints-v0", config=...)`` and ``"veriray/VIRL-v0"``.
"""

from gymnasium.envs.registration import register, registry

GENERAL_POINTS_ID = "veriray/GeneralPoints-v0"
VIRL_ID = "veriray/VIRL-v0"

if GENERAL_POINTS_ID not in registry:
    register(id=GENERAL_POINTS_ID, entry_point="envs.generalpoints.env:GeneralPointsEnv")
if VIRL_ID not in registry:
    register(id=VIRL_ID, entry_point="envs.virl.env:VirlEnv")
