"""Benchmark corpora: generated buyer states, and states whose chat text is real dialog.

A generator's text compresses better than people's, so the figures are also checked on
text from a public dialog corpus installed from PyPI (``chatterbot-corpus``: human-written
English conversations, 21 topic files). The corpus is split by topic file: a dictionary is
trained on states built from one half and measured on states built from the other half,
so it never sees the text it is scored on.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from memory_core.seeding import generate_state
from memory_core.state import prepare_state

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _message_count(rng: random.Random) -> int:
    """Mostly long-running chats (38-50 kept messages), some anywhere in 2-80."""
    return rng.randint(38, 50) if rng.random() < 0.85 else rng.randint(2, 80)


def generated_states(count: int, seed: int) -> list[dict[str, Any]]:
    """Realistic states as the bot would store them (history trimmed, fields filled)."""
    rng = random.Random(seed)
    return [prepare_state(generate_state(rng, message_count=_message_count(rng)),
                          max_history_messages=50, now=NOW)
            for _ in range(count)]


def _dialog_lines(half: int) -> list[str]:
    import chatterbot_corpus  # type: ignore[import-untyped]

    folder = Path(chatterbot_corpus.__file__).parent / "data" / "english"
    files = sorted(folder.glob("*.yml"))
    chosen = files[half::2]
    lines: list[str] = []
    for path in chosen:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for conversation in document.get("conversations") or []:
            lines.extend(str(line) for line in conversation if line)
    return lines


def public_dialog_states(count: int, seed: int, half: int) -> list[dict[str, Any]]:
    """Generated states whose every message is replaced by real dialog text.

    ``half`` (0 or 1) picks which topic files the text comes from.
    """
    lines = _dialog_lines(half)
    rng = random.Random(seed)
    states = []
    for state in generated_states(count, seed):
        history = []
        for message in state["conversation_history"]:
            parts = 1 + rng.randrange(2) if message["role"] == "user" else 2 + rng.randrange(3)
            start = rng.randrange(len(lines))
            text = " ".join(lines[(start + i) % len(lines)] for i in range(parts))
            history.append({**message, "content": text})
        states.append({**state, "conversation_history": history})
    return states


def training_and_measured(count: int) -> dict[str, tuple[list[dict[str, Any]],
                                                          list[dict[str, Any]]]]:
    """Both corpora as (states to train a dictionary on, other states to measure), the
    public one split by topic file so the dictionary never sees the measured text."""
    return {
        "generated": (generated_states(count, 99), generated_states(count, 11)),
        "public": (public_dialog_states(count, 99, 0), public_dialog_states(count, 11, 1)),
    }


def measured_and_training(corpus: str, buyers: int,
                          training: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The states a benchmark measures and other states to train its dictionary on (for
    the public corpus, from the other half of the topic files)."""
    if corpus == "generated":
        return generated_states(buyers, seed=11), generated_states(training, seed=99)
    return (public_dialog_states(buyers, seed=11, half=1),
            public_dialog_states(training, seed=99, half=0))
