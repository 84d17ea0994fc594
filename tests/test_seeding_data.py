"""The seeding phrase tables as package data (``memory_core/data/seeding_*.json``, issue 13).

Seeded buyers must not change when the tables move or the loader changes: the cases in
``fixtures/seeding`` were written by ``fixtures/seeding/make_fixtures.py`` before the
tables left ``seeding.py``, and are regenerated here and compared in full (small cases)
or by a digest of their canonical JSON (large corpora). The data files must be valid,
non-empty, declared as package data, and read only when a buyer is generated.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from memory_core import seeding

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "seeding"
STATES = json.loads((FIXTURES / "states.json").read_text(encoding="utf-8"))["cases"]
DIGESTS = json.loads((FIXTURES / "digests.json").read_text(encoding="utf-8"))["cases"]

#: Every key the data files hold besides "about"; each is read by seeding._tables().
TABLE_KEYS = {
    "first_names", "last_names", "email_domains", "cities", "neighborhood_heads",
    "neighborhood_tails", "street_names", "street_suffixes", "school_district_heads",
    "school_district_tails", "lender_heads", "lender_tails", "agent_names", "partners",
    "workplaces", "from_cities", "features", "must_haves_by_persona", "property_phrases",
    "property_alternatives", "amenities", "inspection_issues", "days", "times", "months",
    "user_openers", "user_tails", "assistant_acks", "assistant_questions", "user_topics",
    "assistant_topics", "persona_user", "persona_assistant", "objections",
}
TEMPLATE_KEYS = ("user_openers", "user_tails", "assistant_acks", "assistant_questions",
                 "user_topics", "assistant_topics", "persona_user", "persona_assistant",
                 "objections")
FIELD = re.compile(r"\{([a-z0-9_]+)\}")


def _load_generator() -> ModuleType:
    path = FIXTURES / "make_fixtures.py"
    spec = importlib.util.spec_from_file_location("seeding_make_fixtures", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = _load_generator()


def _data_files() -> dict[str, dict[str, Any]]:
    folder = resources.files("memory_core") / "data"
    files = {}
    for name in seeding._DATA_FILES:
        raw = (folder / name).read_bytes()
        files[name] = json.loads(raw.decode("utf-8"))
        assert orjson.loads(raw) == files[name], name  # the loader reads it the same
    return files


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    else:
        for item in value.values():
            yield from _strings(item)


# the same seeds give the same buyers ---------------------------------------------------

def test_fixtures_match_the_generator_script() -> None:
    """The committed fixtures are what the script's cases describe (none added or lost)."""
    def calls(cases: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return orjson.loads(orjson.dumps(cases))

    assert {name: case["call"] for name, case in STATES.items()} == calls(GENERATOR.FULL_CASES)
    assert {name: case["call"] for name, case in DIGESTS.items()} == calls(
        GENERATOR.DIGEST_CASES)


@pytest.mark.parametrize("name", sorted(STATES))
def test_seeded_output_is_unchanged(name: str) -> None:
    case = STATES[name]
    result = GENERATOR.run(case["call"])
    assert result == case["result"]
    # Equal as JSON text too: an int where a float was (2 == 2.0) would show here.
    assert GENERATOR.canonical(result) == GENERATOR.canonical(case["result"])


@pytest.mark.parametrize("name", sorted(DIGESTS))
def test_seeded_corpora_are_unchanged(name: str) -> None:
    case = DIGESTS[name]
    result = GENERATOR.run(case["call"])
    assert len(result) == case["items"]
    assert GENERATOR.digest(result) == case["sha256"]


def test_fixtures_cover_every_temperature_and_persona() -> None:
    states = [item.get("state", item) for case in STATES.values() for item in case["result"]]
    assert {s["buyer_temperature"] for s in states} == {"hot", "warm", "cold"}
    assert {s["buyer_persona"] for s in states} == set(seeding.PERSONAS)
    assert {s["property_preferences"]["property_type"] for s in states} == set(
        seeding.PROPERTY_TYPES)
    assert any(not s["conversation_history"] for s in states)
    assert sum(path.stat().st_size for path in FIXTURES.iterdir()) < 1_000_000


# the data files ------------------------------------------------------------------------

def test_data_files_are_valid_and_every_table_is_filled() -> None:
    files = _data_files()
    keys: list[str] = []
    for name, tables in files.items():
        assert isinstance(tables, dict), name
        assert isinstance(tables.pop("about"), str), name
        keys.extend(tables)
        for key, table in tables.items():
            assert isinstance(table, list | dict) and table, f"{name}: {key} is empty"
            pools = table.values() if isinstance(table, dict) else [table]
            for pool in pools:
                assert isinstance(pool, list) and pool, f"{name}: {key} has an empty pool"
            for text in _strings(table):
                assert text and text == text.strip() and "  " not in text, (name, key, text)
    assert sorted(keys) == sorted(TABLE_KEYS), "a key is missing, unused or in two files"
    for objection in files["seeding_objections.json"]["objections"]:
        assert set(objection) == {"summary", "buyer", "assistant"}
        assert objection["summary"] and objection["buyer"] and objection["assistant"]


def test_every_template_is_well_formed() -> None:
    """Every {slot} names a _Writer method and every [a|b] closes: nothing unrendered."""
    raw = seeding._raw_tables()
    for key in TEMPLATE_KEYS:
        for template in _strings(raw[key]):
            outside = seeding._ALTERNATION.sub("", template)
            parts = [outside, *(option for match in seeding._ALTERNATION.finditer(template)
                                for option in match.group(1).split("|"))]
            for part in parts:
                for slot in FIELD.findall(part):
                    assert hasattr(seeding._Writer, f"_s_{slot}"), (key, template)
                assert not set(FIELD.sub("", part)) & set("{}[]|"), (key, template)


def test_the_loaded_tables_are_complete() -> None:
    tables = seeding._tables()
    for field in dataclasses.fields(tables):
        value = getattr(tables, field.name)
        assert value, field.name
        if isinstance(value, dict):
            assert all(value.values()), field.name
    assert set(tables.user_topics) == set(seeding.TOPICS) - {"persona", "objection"}
    assert set(tables.assistant_topics) == set(tables.user_topics)
    assert set(tables.persona_user) == set(tables.persona_assistant) == set(seeding.PERSONAS)
    assert set(tables.must_haves_by_persona) == set(seeding.PERSONAS)
    assert set(tables.property_phrases) == set(seeding.PROPERTY_TYPES)
    assert len(tables.objection_summaries) == len(tables.objection_user) == len(
        tables.objection_assistant)
    assert len(tables.neighborhoods) == 40 * 20  # every head with every tail


def test_old_table_names_still_read_the_data() -> None:
    files = _data_files()
    domains = tuple(files["seeding_profiles.json"]["email_domains"])
    assert domains == seeding.EMAIL_DOMAINS
    assert seeding.USER_TOPICS["budget"] == tuple(
        files["seeding_phrases.json"]["user_topics"]["budget"])
    assert seeding.NEIGHBORHOODS[0] == "Maple Heights"
    summary, said, answers = seeding.OBJECTIONS[0]
    assert isinstance(summary, str) and isinstance(said, tuple) and isinstance(answers, tuple)
    assert "FIRST_NAMES" in dir(seeding)
    with pytest.raises(AttributeError, match="NO_SUCH_TABLE"):
        _ = seeding.NO_SUCH_TABLE


# packaging and loading -----------------------------------------------------------------

def test_data_files_are_declared_as_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools = config["tool"]["setuptools"]
    assert "memory_core" in setuptools["packages"]
    patterns = setuptools["package-data"]["memory_core"]
    package = ROOT / "memory_core"
    declared = {path for pattern in patterns for path in package.glob(pattern)}
    data_files = {path for path in (package / "data").rglob("*") if path.is_file()}
    assert {package / "data" / name for name in seeding._DATA_FILES} <= data_files
    assert data_files <= declared, sorted(str(p) for p in data_files - declared)


def test_tables_are_read_once_and_only_when_buyers_are_generated() -> None:
    script = """
import sys
from datetime import UTC, datetime
import memory_core
assert "memory_core.seeding" not in sys.modules, "import memory_core imports seeding"
from memory_core.seeding import SeedOptions, _raw_tables, _tables, generate_buyers
SeedOptions(count=3).validate()
assert _raw_tables.cache_info().currsize == 0 and _tables.cache_info().currsize == 0
list(generate_buyers(SeedOptions(count=3), now=datetime(2025, 1, 1, tzinfo=UTC)))
list(generate_buyers(SeedOptions(count=3), now=datetime(2025, 1, 1, tzinfo=UTC)))
assert _raw_tables.cache_info().misses == 1 and _tables.cache_info().misses == 1
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
