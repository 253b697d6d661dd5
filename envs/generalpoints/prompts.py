"""What the GeneralPoints env says to the model: the first user turn and the budget notice.

The feedback after a failed answer is the verifier's (verifier.generalpoints: REASONS,
failure_feedback); it travels in the verdict.

All text is printable ASCII so it fits the env's Text observation space. The OOD rule is worded
one card per line, K first, so the right value is never simply "the first number listed".

Layout: what is the same for every episode of a suite comes first (the game, the rule, the
task, the answer format), what varies comes last (the hand and the target). Every prompt of a
batch then shares its first ~85% of tokens, which the rollout engines' prefix cache and the
learner's shared-prefix training compute once.
"""

from __future__ import annotations

from verifier.generalpoints_rules import GeneralPointsTask

_COUNT_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}

ANSWER_SCHEMA = '{"cards": [...], "number": [...], "formula": "..."}'

_RULE_LINES = {
    "ten": ["J, Q and K each count as 10."],
    "ordinal": ["K counts as 13.", "Q counts as 12.", "J counts as 11."],
}


def rule_lines(rule: str) -> list[str]:
    """The rule, one line per statement (ace and number cards first, then face cards)."""
    return ["A counts as 1.", "2 to 10 count as their face value.", *_RULE_LINES[rule]]


def initial_prompt(task: GeneralPointsTask, observation_mode: str) -> str:
    """The first user turn of an episode: shared instructions first, the hand and target last."""
    n = len(task.cards)
    count = _COUNT_WORDS.get(n, str(n))
    if observation_mode == "image":
        game = f"You are playing a card game. The image shows {count} playing cards on a table."
        cards_hint = "the ranks of the cards you see, left to right"
        hand = f"Target: {task.target}."
    else:
        game = f"You are playing a card game with {count} playing cards."
        cards_hint = "the ranks of your cards, in the order given"
        hand = f"Your cards: {', '.join(task.ranks)}.\nTarget: {task.target}."
    rules = "\n".join(f"- {line}" for line in rule_lines(task.face_card_rule))
    return (
        f"{game}\n\n"
        f"Each card counts as a number:\n{rules}\n\n"
        f"Write one formula that uses each card's number exactly once, with only +, -, *, / "
        f"and parentheses, whose value is exactly the target. "
        f"Intermediate results may be fractions.\n\n"
        f"End your reply with a JSON object of this form:\n{ANSWER_SCHEMA}\n"
        f'where "cards" lists {cards_hint} (like "A", "10", "K"), "number" lists the number '
        f'each card counts as, in the same order, and "formula" is your formula.\n\n'
        f"{hand}"
    )


def budget_feedback(feedback: str, viter: int) -> str:
    """Feedback for the last failed attempt, when the verification budget is spent.

    ``feedback`` is the verifier's text (verifier.generalpoints.failure_feedback), which ends
    with "Try again ..."; that request is replaced by the budget notice."""
    first = feedback.split(" Try again", 1)[0]
    return f"{first} You have used all {viter} attempts."
