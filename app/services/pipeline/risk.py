"""Risk levels and the analysis prompt/answer contract shared by the analyzer and the views."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# score -> level: the upper bound of each level (inclusive)
LEVELS: tuple[tuple[int, str], ...] = ((29, "low"), (59, "medium"), (84, "high"), (100, "critical"))

SYSTEM_PROMPT = (
    "You are a security analysis AI for home and business cameras. Given the detections and "
    "their descriptions from one camera over a short window, assess the risk. Answer with one "
    'JSON object: {"risk_score": 0-100, "risk_level": "low|medium|high|critical", '
    '"summary": "...", "reasoning": "..."}.'
)


def level_of(score: int) -> str:
    for bound, name in LEVELS:
        if score <= bound:
            return name
    return "critical"


@dataclass(frozen=True)
class Assessment:
    risk_score: int
    risk_level: str
    summary: str
    reasoning: str


class UnreadableAnswer(ValueError):
    pass


def parse(content: str) -> Assessment:
    """Read the model's JSON answer (the object starting at its first "{"); the level follows
    the score."""
    # one JSON value read from the first "{", text around it ignored: linear in the answer's
    # length whatever its braces (a regex over "{.*}" is quadratic on brace-heavy output)
    start = content.find("{")
    if start < 0:
        raise UnreadableAnswer("the analysis answer holds no JSON object")
    try:
        data: Any = json.JSONDecoder().raw_decode(content, start)[0]
        score = round(float(data["risk_score"]))
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise UnreadableAnswer(f"the analysis answer is not a risk assessment: {exc}") from None
    if not 0 <= score <= 100:
        raise UnreadableAnswer(f"risk_score {score} is outside 0-100")
    return Assessment(
        risk_score=score,
        risk_level=level_of(score),
        summary=str(data.get("summary") or "")[:4000],
        reasoning=str(data.get("reasoning") or "")[:8000],
    )


def describe_batch(camera_id: str, detections: list[dict[str, Any]]) -> str:
    """The user message: what the camera saw, one line per detection."""
    lines = [f"Camera: {camera_id}", f"Detections: {len(detections)}"]
    for d in detections:
        objects = ", ".join(
            f"{o.get('label')} ({float(o.get('confidence', 0)):.2f})" for o in d.get("objects", [])
        )
        lines.append(f"- at {d.get('captured_at')}: {objects or 'nothing'}")
        if d.get("description"):
            lines.append(f"  description: {d['description']}")
        if d.get("attributes"):
            lines.append(f"  attributes: {json.dumps(d['attributes'], sort_keys=True)}")
    return "\n".join(lines)
