"""Suite metrics as pure functions of played episodes (no Ray, no engine).

``suite_metrics(episodes)`` returns one JSON-able dict per suite:

- n, successes, rate, stderr: episode success (GP: solved within the verification budget;
  V-IRL: route success), binomial s.e. sqrt(p(1-p)/n) as in the study
- first_try: success on the first answer (what VIter 1 would have scored, same episodes)
- mean_turns; tokens: prompt / response tokens summed over turns (inference compute)
- recognition (GP-VL): share of episodes whose FIRST answer names the right cards
  (verdict ``cards_ok``); an unparsable first answer counts as wrong.
  (V-IRL-VL): share of ALL turns whose observation names exactly the landmarks in view
  (verdict ``landmarks_ok``; every turn shows a new place, so every turn is a recognition)
- translation (GP): share of episodes whose FIRST answer's "number" field lists the hand's
  numbers under the active rule (verdict ``number_field_ok``; missing or unparsable counts
  wrong): did the model turn J/Q/K into the rule's values? It never decides success.
- every rate carries its binomial s.e. and its Wilson 95% interval (``wilson95``)
- by_face_card (GP): success per face rank present in the hand, plus hands without one
  (the CPU study: an OOD-rule average hides that K hands fail while J hands pass)
- step_accuracy, route_success (V-IRL): per-step accuracy as the study counts it, correct
  turns over steps (the env's ``steps_correct`` / ``steps_total``; a route ended by a spent
  budget counts one more wrong step). ``steps`` pools them over the suite's routes, as the
  study does, with the binomial s.e. that treats steps as independent; ``mean`` is the mean of
  the per-route ratio with its s.e. (``stderr``); both are reported.

Which metrics appear is decided by what the episodes carry (V-IRL final infos have
"metrics", GP image-mode verdicts have ``cards_ok``), so nothing branches on a family name.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from evaluation.stats import Rate

if TYPE_CHECKING:
    from rollout.runner import EpisodeResult

FACE_RANKS = ("J", "Q", "K")


def _verdict(turn: Any) -> dict[str, Any]:
    return json.loads(turn.verdict) if turn.verdict else {}


def _rate(flags: Sequence[bool]) -> Rate:
    return Rate(sum(bool(f) for f in flags), len(flags))


def success_rate(episodes: Sequence[EpisodeResult]) -> Rate:
    return _rate([e.success for e in episodes])


def first_try_rate(episodes: Sequence[EpisodeResult]) -> Rate:
    return _rate([bool(e.turns) and e.turns[0].success for e in episodes])


def token_counts(episodes: Sequence[EpisodeResult]) -> dict[str, int | float]:
    """Tokens the engine processed. ``prompt`` counts every turn's whole conversation as the
    engine tokenised it, so VLM image placeholder tokens (expanded to the vision tower's patch
    count by the processor) are included: that is the D of 2ND inference FLOPs."""
    turns = [t for e in episodes for t in e.turns]
    prompt = sum(len(t.prompt_token_ids) for t in turns)
    response = sum(len(t.response_token_ids) for t in turns)
    return {
        "prompt": prompt,
        "response": response,
        "total": prompt + response,
        "turns": len(turns),
        "mean_response": response / len(turns) if turns else 0.0,
    }


def recognition_rate(episodes: Sequence[EpisodeResult]) -> Rate | None:
    """GP-VL card recognition on the first answer; None when no verdict checks cards."""
    firsts = [_verdict(e.turns[0]) for e in episodes if e.turns]
    if not any(v.get("cards_ok") is not None for v in firsts):
        return None  # text mode (cards never checked) or not GeneralPoints
    return _rate([v.get("cards_ok") is True for v in firsts])


def landmark_recognition_rate(episodes: Sequence[EpisodeResult]) -> Rate | None:
    """V-IRL-VL landmark recognition over every turn; None when no verdict checks landmarks."""
    flags = [_verdict(t).get("landmarks_ok") for e in episodes for t in e.turns]
    checked = [f is True for f in flags if f is not None]
    return _rate(checked) if checked else None


def translation_rate(episodes: Sequence[EpisodeResult]) -> Rate | None:
    """GP translation accuracy on the first answer; None when no verdict reads the field."""
    firsts = [_verdict(e.turns[0]) for e in episodes if e.turns]
    if not any("number_field_ok" in v for v in firsts):
        return None
    return _rate([v.get("number_field_ok") is True for v in firsts])


def _hand_ranks(episode: EpisodeResult) -> list[str] | None:
    if not episode.turns:
        return None
    state = json.loads(episode.turns[0].task_state)
    cards = state.get("cards")
    if not isinstance(cards, list):
        return None
    return [str(c.get("rank")) for c in cards if isinstance(c, dict)]


def face_card_breakdown(episodes: Sequence[EpisodeResult]) -> dict[str, Rate] | None:
    """Success per face rank in the hand (a hand with J and K counts under both) and
    without any face card; None when the task states hold no cards (not GeneralPoints)."""
    hands = [(_hand_ranks(e), e.success) for e in episodes]
    if not hands or any(ranks is None for ranks, _ in hands):
        return None
    out = {
        rank: _rate([ok for ranks, ok in hands if ranks is not None and rank in ranks])
        for rank in FACE_RANKS
    }
    out["none"] = _rate(
        [ok for ranks, ok in hands if ranks is not None and not set(ranks) & set(FACE_RANKS)]
    )
    return out


def navigation_metrics(episodes: Sequence[EpisodeResult]) -> dict[str, Any] | None:
    """V-IRL per-step accuracy and route success; None without navigation metrics."""
    finals = [e.final_info.get("metrics") for e in episodes]
    if not finals or any(m is None for m in finals):
        return None
    accs = [float(m["step_accuracy"]) for m in finals]
    n = len(accs)
    mean = sum(accs) / n
    # Sample s.e. of the per-route mean; 0 for a single route (no spread to estimate).
    var = sum((a - mean) ** 2 for a in accs) / (n - 1) if n > 1 else 0.0
    pooled = Rate(
        sum(int(m["steps_correct"]) for m in finals), sum(int(m["steps_total"]) for m in finals)
    )
    return {
        "step_accuracy": {
            "mean": mean,
            "stderr": math.sqrt(var / n),
            "steps": pooled.to_dict(),
        },
        "route_success": _rate([bool(m["route_success"]) for m in finals]).to_dict(),
    }


def suite_metrics(episodes: Sequence[EpisodeResult]) -> dict[str, Any]:
    """Every metric of one suite's episodes (see the module docstring)."""
    if not episodes:
        raise ValueError("suite_metrics needs at least one episode")
    out: dict[str, Any] = success_rate(episodes).to_dict()
    out["first_try"] = first_try_rate(episodes).to_dict()
    out["mean_turns"] = sum(len(e.turns) for e in episodes) / len(episodes)
    out["tokens"] = token_counts(episodes)
    recognition = recognition_rate(episodes)
    if recognition is None:
        recognition = landmark_recognition_rate(episodes)
    if recognition is not None:
        out["recognition"] = recognition.to_dict()
    translation = translation_rate(episodes)
    if translation is not None:
        out["translation"] = translation.to_dict()
    faces = face_card_breakdown(episodes)
    if faces is not None:
        out["by_face_card"] = {k: r.to_dict() for k, r in faces.items()}
    nav = navigation_metrics(episodes)
    if nav is not None:
        out |= nav
    first = episodes[0].turns[0].response_text if episodes[0].turns else ""
    out["example_response"] = first[:500]
    return out


def headline(metrics: dict[str, Any], name: str) -> tuple[float, float] | None:
    """(value, error bar) of a named metric in a suite_metrics dict, or None if absent.

    "success" is the episode success rate; "step_accuracy" the V-IRL per-route mean with the
    pooled binomial s.e.; "recognition" and "first_try" their rates.
    """
    if name == "success":
        return metrics["rate"], metrics["stderr"]
    if name == "step_accuracy":
        if "step_accuracy" not in metrics:
            return None
        acc = metrics["step_accuracy"]
        return acc["mean"], acc["steps"]["stderr"]
    if name in ("recognition", "first_try", "translation"):
        if name not in metrics:
            return None
        return metrics[name]["rate"], metrics[name]["stderr"]
    raise ValueError(f"unknown headline metric {name!r}")
