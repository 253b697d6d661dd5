"""The expert along a route: the correct action at every step, and its JSON answer for SFT.

A route is walked as a list of steps. At each point the agent may first turn (when a 'turn'
milestone is there), then walks forward to the next point; at the last point it stops. The
heading is the start heading at point 0, the heading of the street segment walked into at later
points (or the heading the data gives for the point), and the milestone's heading after a turn.
An absolute turn is named by the data's compass label where the data has one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from envs.virl.directions import bearing, compass_label, relative_label
from envs.virl.routes import Route


@dataclass(frozen=True)
class OracleStep:
    """One decision of the walk: where the agent is, how it faces, what it must do."""

    point_index: int
    heading: float
    """The agent's heading when it decides."""
    kind: str
    """'turn', 'forward' or 'stop'."""
    target_heading: float | None
    """Heading after a turn (None otherwise)."""
    sentence_index: int
    """Index into Route.sentences of the instruction being executed."""
    label: str | None = None
    """Compass label of the turn from the data (None: computed from target_heading)."""

    def action(self, action_space: str) -> str:
        """The canonical action string in an action space: 'turn_direction(east)', 'forward()'."""
        if self.kind == "forward":
            return "forward()"
        if self.kind == "stop":
            return "stop()"
        assert self.target_heading is not None
        if action_space == "absolute":
            return f"turn_direction({self.label or compass_label(self.target_heading)})"
        return f"turn_direction({relative_label(self.heading, self.target_heading)})"


def oracle_steps(route: Route) -> tuple[OracleStep, ...]:
    """Every step of the expert walk along a route, in order."""
    turns = {m.point_index: m for m in route.milestones if m.action == "turn"}
    # Sentence indices: milestone j contributes [approach], instruction, in order.
    approach_idx: dict[int, int] = {}
    instr_idx: dict[int, int] = {}
    k = 0
    for j, m in enumerate(route.milestones):
        if m.approach:
            approach_idx[j] = k
            k += 1
        if m.instruction:
            instr_idx[j] = k
            k += 1
        else:  # a stop that shares the sentence of the walk leading to it
            instr_idx[j] = k - 1
    milestone_no = {m.point_index: j for j, m in enumerate(route.milestones)}
    # Walking forward from point i heads for the first milestone beyond it.
    next_milestone = [
        next(j for j, m in enumerate(route.milestones) if m.point_index > i)
        for i in range(route.num_points - 1)
    ]
    steps: list[OracleStep] = []
    heading = route.start_heading
    last = route.num_points - 1
    for i in range(route.num_points):
        if route.headings is not None:
            heading = route.headings[i]
        elif i > 0:
            heading = bearing(route.geocodes[i - 1], route.geocodes[i])
        if i in turns:
            m = turns[i]
            assert m.heading is not None
            sentence = instr_idx[milestone_no[i]]
            steps.append(OracleStep(i, heading, "turn", m.heading, sentence, m.label))
            heading = m.heading
        if i == last:
            steps.append(OracleStep(i, heading, "stop", None, instr_idx[len(route.milestones) - 1]))
        else:
            target = next_milestone[i]
            sentence = approach_idx.get(target, instr_idx[target])
            steps.append(OracleStep(i, heading, "forward", None, sentence))
    return tuple(steps)


def observation_summary(route: Route, step: OracleStep) -> str:
    """What the expert reports as the current observation: the visible landmarks, by name."""
    at = " at an intersection" if route.intersections[step.point_index] else ""
    if route.notes is not None:
        return f"{route.notes[step.point_index]}{at}."
    names = [lm.name for lm in route.visible_landmarks(step.point_index)]
    if not names:
        return f"No landmarks in view{at}."
    return f"{', '.join(names)} in view{at}."


def expert_answer(route: Route, step: OracleStep, action_space: str) -> str:
    """The JSON answer the expert gives at a step (the SFT target)."""
    answer = {
        "current observation": observation_summary(route, step),
        "current instruction": route.sentences[step.sentence_index],
        "action": step.action(action_space),
    }
    return json.dumps(answer, indent=2)
