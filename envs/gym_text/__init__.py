"""Any gymnasium env with text observations and actions as a veriray task (family
"gymnasium"). See envs/gym_text/adapter.py and docs/adding-a-task.md."""
