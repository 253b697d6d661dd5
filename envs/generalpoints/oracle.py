"""Expert answers for GeneralPoints (the SFT data): exact solver output in the answer format.

`oracle_answer(task)` is the JSON object the prompt asks for, with a correct formula. With
`thought=True` a short worked solution comes first, as plain text before the JSON object, so
the learner's thought coefficient can weight it separately from the answer.
"""

from __future__ import annotations

import json

from envs.generalpoints.solver import solve, steps, to_formula
from verifier.generalpoints_rules import GeneralPointsTask


def oracle_formula(task: GeneralPointsTask) -> str:
    """A correct formula for the task; ValueError when the hand has none."""
    expr = solve(task.numbers, task.target)
    if expr is None:
        raise ValueError(f"task: no formula over {list(task.numbers)} reaches {task.target}")
    return to_formula(expr)


def oracle_thought(task: GeneralPointsTask) -> str:
    """A short worked solution: what the cards count as, then one line per operation."""
    expr = solve(task.numbers, task.target)
    if expr is None:
        raise ValueError(f"task: no formula over {list(task.numbers)} reaches {task.target}")
    cards = ", ".join(task.ranks)
    numbers = ", ".join(str(n) for n in task.numbers)
    work = "; ".join(steps(expr)) or f"{task.numbers[0]} is already {task.target}"
    return f"The cards {cards} count as {numbers}. {work}."


def oracle_answer(task: GeneralPointsTask, *, thought: bool = False) -> str:
    """The expert reply: optional thought, then the JSON answer object (cards in hand order)."""
    answer = json.dumps(
        {
            "cards": list(task.ranks),
            "number": list(task.numbers),
            "formula": oracle_formula(task),
        }
    )
    return f"{oracle_thought(task)}\n{answer}" if thought else answer
