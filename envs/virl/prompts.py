"""The text of V-IRL user turns: the opening prompt, observations, and follow-up turns.

All text is ASCII so it fits the environment's Text observation space.

Layout of the opening turn: what every route shares comes first (the task, the action space,
the observation and output formats), what belongs to this route comes last (its instructions,
then the current observation), so the rollout engines' prefix cache and the learner's
shared-prefix training compute the shared part once.
"""

from __future__ import annotations

from envs.virl.directions import bearing, compass_label, side_word
from envs.virl.oracle import OracleStep
from envs.virl.render import grid_headings
from envs.virl.routes import Route
from verifier.virl_rules import ABSOLUTE_DIRECTIONS, RELATIVE_DIRECTIONS

ANSWER_KEYS: tuple[str, str, str] = ("current observation", "current instruction", "action")

_TASK = (
    "[Task]\n"
    "You are walking through a city by following route instructions. At every step you "
    "receive what you observe at your current position. Report the landmarks you observe, "
    "pick the instruction sentence you are carrying out, and choose one action. A wrong "
    "answer gets feedback and one more try; after {tries} failed tries at a step the route "
    "ends."
)


def action_space_text(action_space: str) -> str:
    directions = ABSOLUTE_DIRECTIONS if action_space == "absolute" else RELATIVE_DIRECTIONS
    return (
        "[Action space]\n"
        "- forward(): walk to the next point along the street you face\n"
        f"- turn_direction(x): turn in place; x is one of: {', '.join(directions)}\n"
        "- stop(): stop; only correct at the destination"
    )


def _observation_format(mode: str) -> str:
    if mode == "text":
        return (
            "[Observation format]\n"
            "Each observation gives the direction you face, the landmarks in view with where "
            "they are (ahead, right, behind, left), and whether you stand at an intersection."
        )
    return (
        "[Observation format]\n"
        "Each observation is a 2x2 grid of street views taken where you stand: top-left looks "
        "to your front, top-right to your right, bottom-left behind you, bottom-right to your "
        "left. The absolute heading of each view is given with the observation. Landmarks are "
        "shops whose names are written on signs; report every landmark sign you can read."
    )


_OUTPUT = (
    "[Output]\n"
    "Answer with only this JSON object:\n"
    "{\n"
    '  "current observation": "the names of the landmarks you observe now, or none",\n'
    '  "current instruction": "the instruction sentence you are carrying out",\n'
    '  "action": "one action from the action space, e.g. forward()"\n'
    "}"
)


def observation_text(route: Route, step: OracleStep, mode: str) -> str:
    """The [Current observation] block for a step."""
    facing = f"You face {compass_label(step.heading)} (heading {step.heading:.0f} degrees)."
    if mode == "image":
        panes = ", ".join(
            f"{label} = {compass_label(h)} ({h:.0f} degrees)"
            for label, h in grid_headings(step.heading)
        )
        return f"[Current observation]\n{facing} The image shows the street views: {panes}."
    landmarks = _landmark_text(route, step)
    inter = (
        "You are at an intersection."
        if route.intersections[step.point_index]
        else ("You are not at an intersection.")
    )
    return f"[Current observation]\n{facing} {landmarks} {inter}"


def _landmark_text(route: Route, step: OracleStep) -> str:
    """The landmarks sentence: the data's own sentence where it has one (study layout)."""
    if route.notes is not None:
        return f"{route.notes[step.point_index].rstrip('.')}."
    here = route.geocodes[step.point_index]
    seen = [
        f"{lm.name} ({side_word(step.heading, bearing(here, lm.latlng))})"
        for lm in route.visible_landmarks(step.point_index)
    ]
    return f"Landmarks in view: {'; '.join(seen)}." if seen else "No landmarks in view."


def first_prompt(route: Route, step: OracleStep, action_space: str, mode: str, tries: int) -> str:
    """The opening user turn: task, action space, formats, then the route's instructions and
    the observation (shared first, route-specific last)."""
    return "\n\n".join(
        (
            _TASK.format(tries=tries),
            action_space_text(action_space),
            _observation_format(mode),
            _OUTPUT,
            f"[Instructions]\n{route.instruction_text}",
            observation_text(route, step, mode),
        )
    )


def success_turn(route: Route, step: OracleStep, mode: str) -> str:
    """The user turn after a correct action: the next observation."""
    return f"Correct.\n\n{observation_text(route, step, mode)}"


def failure_turn(feedback: str, route: Route, step: OracleStep, mode: str) -> str:
    """The user turn after a failed try: the verifier's feedback and the same observation."""
    return f"{feedback} Try again.\n\n{observation_text(route, step, mode)}"


def final_turn(success: bool, feedback: str) -> str:
    """The last observation text of an episode (nothing is asked any more)."""
    return (
        "Correct. You have reached the destination."
        if success
        else (f"{feedback} The route has ended.")
    )
