"""``python -m memory_core`` / ``memory-core``: operate the buyer memory from a shell.

A thin shell over :mod:`memory_core.admin`, :mod:`memory_core.inventory` and
:mod:`memory_core.seeding`. Exit codes: 0 ok, 1 not found, 2 usage or connection error,
130 stopped by Ctrl-C; every failure prints one line on stderr that says what to do.
"Not found" means no readable buyer: no key, or a key holding a corrupt, oversized or
wrong-type record (and, for ``reencrypt``, records that could not be rewritten). A long
write stopped by Ctrl-C says how far it got, audits that, and exits 130. Output is for people by
default (summaries and tables that fit 100 columns, every value from Redis escaped) and
for scripts with ``--json``. Successes are printed, not logged: the audit trail records
them, and log lines on stderr are kept for problems.

pandas and tqdm are the ``[cli]`` extra and fakeredis (``memory://``) the ``[demo]`` one:
they, and the modules built on pandas, are imported by the commands that use them, through
:func:`memory_core.extras.require`, so ``--help`` and the other commands work on a bare
``pip install memory-core`` and a command that lacks its extra says which one (exit 2).
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import logging
import os
import signal
import sys
import textwrap
import threading
import unicodedata
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import redis

from memory_core import audit, erasure, extras, health, rotation, topology
from memory_core.config import CONFIG_PATH_ENV, load_config
from memory_core.connection import DEFAULT_REDIS_URL, REDIS_URL_ENV, parse_target
from memory_core.crypto import KEYS_ENV, KEYS_FILE_ENV, generate_key_pair
from memory_core.errors import (
    ConfigError,
    ConnectionURLError,
    CorruptRecord,
    InvalidState,
    MemoryCoreError,
    MissingDictionary,
    StoreUnavailable,
    UndecryptableRecord,
)
from memory_core.exposition import keyspace_exposition
from memory_core.passwords import hash_password
from memory_core.safetext import LOG_CHARS, printable, printable_json
from memory_core.seeding import SeedOptions, check_id_prefix, generate_buyers
from memory_core.state import mask_pii, parse_timestamp, validate_contact_id
from memory_core.store import StoredRecord, SyncBuyerConversationMemory

if TYPE_CHECKING:  # built on pandas: imported where used, through _cli_module()
    from memory_core import admin, dictionary_use, sampling

EXIT_OK, EXIT_NOT_FOUND, EXIT_USAGE = 0, 1, 2
#: 128 + SIGINT, as a shell reports a command stopped by Ctrl-C.
EXIT_INTERRUPTED = 130
#: Generated QA buyers written per pipeline (and per audit-exact step when interrupted).
SEED_BATCH = 500
logger = logging.getLogger("memory_core.cli")
#: Every line of human output fits a terminal this wide.
WIDTH = 100
DESCRIPTION = ("Operate the buyer conversation memory in Redis: seed QA buyers, list and "
               "show buyers, clear them, migrate legacy records, rotate keys, erase a "
               "person's data.")
EPILOG = ("Exit codes: 0 ok, 1 not found, 2 usage or connection error, 130 stopped by "
          "Ctrl-C (how far it got is printed and audited). Not found includes a key that "
          "holds no readable buyer (a corrupt, oversized or wrong-type record) and, for "
          "reencrypt, records that could not be rewritten. Redis comes from --redis-url, "
          f"then ${REDIS_URL_ENV} (unset: {DEFAULT_REDIS_URL}); an empty one is refused.")


#: inventory --sample's range, memory_core.sampling's MIN_DRAWS and MAX_DRAWS repeated so
#: that --help imports no pandas (tests/test_packaging.py checks that they agree).
SAMPLE_DRAWS = (100, 1_000_000)


def _cli_module(name: str, purpose: str) -> Any:
    """``memory_core.<name>``, which needs pandas or tqdm: the ``[cli]`` extra.

    Raises :class:`~memory_core.extras.MissingExtra` (exit 2, one line) without it.
    """
    return extras.require(f"memory_core.{name}", "cli", purpose)


class _Parser(argparse.ArgumentParser):
    """argparse exits with 2 on usage errors already; keep its message to one line."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    """An argparse type for a whole number in low..high."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="memory-core", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--redis-url", default=None,
                        help=f"Redis URL (default: {REDIS_URL_ENV} from the environment, "
                             f"then {DEFAULT_REDIS_URL}); memory://NAME for an in-process "
                             "demo store")
    parser.add_argument("--config", default=None,
                        help=f"YAML config file (default: {CONFIG_PATH_ENV} from the "
                             "environment, then built-in defaults)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    parser.add_argument("--actor", default=None,
                        help="who runs this, for the audit trail (default: the OS user)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    seed = commands.add_parser("seed", help="write QA test buyers (tagged as QA seeds)")
    source = seed.add_mutually_exclusive_group(required=True)
    source.add_argument("--count", type=int, help="how many synthetic buyers to generate")
    source.add_argument("--from-file", type=Path, help="JSON or YAML file: one state with "
                        "its contact_id, or a list of them")
    seed.add_argument("--seed", type=int, default=0, help="random seed (same seed, same buyers)")
    seed.add_argument("--id-prefix", default="qa-", help="contact id prefix (default qa-)")
    seed.add_argument("--overwrite-real", action="store_true",
                      help="replace real buyers whose contact ids the file names (logged); "
                           "by default seeding never touches a real buyer")

    inv = commands.add_parser("inventory", help="summary of every buyer key, as a table")
    inv_format = inv.add_mutually_exclusive_group()
    inv_format.add_argument("--json", action="store_true", help="print one JSON object instead")
    inv_format.add_argument("--prometheus", action="store_true",
                            help="print the keyspace figures in the Prometheus text format "
                                 "(for a node-exporter textfile collector)")
    inv.add_argument("--no-estimate", action="store_true",
                     help="skip estimating what a fresh compression dictionary would save "
                          "(it samples about 1,000 states: a second or two)")
    inv.add_argument("--verify", action="store_true",
                     help="also read and decode every record, to find payloads that no "
                          "longer decode (reads the whole keyspace)")
    inv.add_argument("--sample", type=_draw_count, metavar="DRAWS",
                     help=f"estimate the figures from DRAWS random keys "
                          f"({SAMPLE_DRAWS[0]:,}-{SAMPLE_DRAWS[1]:,}) instead of "
                          "reading every key, each with its 95%% margin")
    inv.add_argument("--seed", type=int, help="with --sample: the seed of the split of the "
                     "draws between nodes")

    show = commands.add_parser("show", help="print one buyer: a summary, then the "
                               "conversation (PII masked)")
    show.add_argument("contact_id")
    show.add_argument("--json", action="store_true", help="print the full state as JSON "
                      "instead")
    show.add_argument("--reveal-pii", action="store_true", help="show name, phone and email")

    clear = commands.add_parser("clear", help="delete one buyer, or every QA seed")
    target = clear.add_mutually_exclusive_group(required=True)
    target.add_argument("contact_id", nargs="?")
    target.add_argument("--qa-seeds", action="store_true", help="delete all QA-seeded buyers")
    clear.add_argument("--yes", action="store_true",
                       help="do not ask for confirmation (for scripts)")

    delete = commands.add_parser(
        "delete-key", help="delete a key under the prefix that holds no buyer (corrupt, "
        "another Redis type, or an id no bot can ask for), as the Server page does")
    delete.add_argument("contact_id", help="what follows the prefix, as the inventory lists "
                        "it; bytes that are not UTF-8 as the shell passes them ($'bad\\xff')")
    delete.add_argument("--yes", action="store_true",
                        help="do not ask for confirmation (for scripts)")

    migrate = commands.add_parser("migrate-legacy", help="rewrite pickled legacy records")
    migrate.add_argument("--dry-run", action="store_true", help="report, change nothing")

    stats = commands.add_parser("stats", help="settings in force, server memory and the "
                                "health the bot processes publish")
    stats.add_argument("--json", action="store_true", help="print one JSON object instead")
    stats.add_argument("--quick", action="store_true",
                       help="skip the dictionaries: their record counts walk every key, and "
                            "the estimate of a fresh one samples 1,000 states")

    train = commands.add_parser("train-dictionary",
                                help="train a zstd dictionary on stored states and use it")
    train.add_argument("--samples", type=_bounded_int(20, 100_000), default=2000,
                       help="states to train on (20-100000)")
    train.add_argument("--size-kb", type=_bounded_int(1, 1024), default=64,
                       help="dictionary size in KiB (1-1024)")
    train.add_argument("--if-worthwhile", action="store_true",
                       help="train only if a new dictionary would save at least --min-saving "
                            "of the sampled records' bytes (for cron); exits 0 either way")
    train.add_argument("--min-saving", type=_bounded_int(1, 99), default=10,
                       help="percent of payload bytes a new dictionary must save (1-99, "
                            "default 10) with --if-worthwhile")

    used = commands.add_parser("dictionaries",
                               help="stored zstd dictionaries and the records naming each")
    used.add_argument("--json", action="store_true", help="print one JSON object instead")
    prune = commands.add_parser("prune-dictionaries",
                                help="remove stored dictionaries no record names")
    prune.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    generate = commands.add_parser("generate-key",
                                   help="print a fresh encryption key as KEY_ID:BASE64 "
                                        f"(an entry of {KEYS_ENV})")
    generate.add_argument("--key-id", default=None,
                          help="1-16 characters of A-Z a-z 0-9 _ - (default: k<date><random>)")
    commands.add_parser("hash-password",
                        help="print a salted hash of a dashboard password (read from a "
                             "prompt, or from stdin when piped)")
    reencrypt = commands.add_parser(
        "reencrypt", help="rewrite every record under the first encryption key (resumable)")
    reencrypt.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    commands.add_parser(
        "reindex", help="enter every record in the phone/email lookup again (after a new "
                        "MEMORY_CORE_LOOKUP_KEY, or for records saved before the lookup)")

    find = commands.add_parser("find", help="contact ids whose state has a phone or email")
    _add_identifier_arguments(find, required=True)
    erase = commands.add_parser(
        "erase", help="delete every state of a contact id, phone or email (a 'delete my "
                      "data' request) and print a receipt as JSON")
    erase.add_argument("contact_id", nargs="?", help="the contact id to erase")
    _add_identifier_arguments(erase, required=False)
    erase.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    return parser


def _add_identifier_arguments(command: argparse.ArgumentParser, *, required: bool) -> None:
    which = command.add_mutually_exclusive_group(required=required)
    which.add_argument("--phone", help="a phone number with its country code, any format")
    which.add_argument("--email", help="an email address, any case")
    command.add_argument("--scan", action="store_true",
                         help="read every record instead of the lookup (finds records saved "
                              "before the lookup existed; slow on a big store)")


def _print_json(value: Any) -> None:
    """Indented JSON; text from Redis holds no raw control, bidi or separator character."""
    sys.stdout.write(printable_json(orjson.dumps(value, option=orjson.OPT_INDENT_2,
                                                 default=str).decode()) + "\n")


@cache
def _whole_rate_bar() -> type[Any]:
    """:class:`WholeRateBar`, defined on first use: tqdm is the ``[cli]`` extra."""
    tqdm = extras.require("tqdm", "cli", "the progress bar").tqdm

    class WholeRateBar(tqdm):  # type: ignore[misc,valid-type]
        """A tqdm bar in whole things: ``1,500/20,000 [00:01<00:16, 1,154 buyers/s]``.

        tqdm's default shows ``1153.85buyers/s`` (or ``1.15kbuyers/s`` with unit_scale):
        nobody seeds a fraction of a buyer.
        """

        FORMAT = ("{l_bar}{bar}| {n_whole}/{total_whole} [{elapsed}<{remaining}, "
                  "{rate_whole} {unit}/s]")

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("bar_format", self.FORMAT)
            super().__init__(*args, **kwargs)

        @property
        def format_dict(self) -> dict[str, Any]:
            values: dict[str, Any] = super().format_dict
            rate = values.get("rate")
            elapsed = values.get("elapsed") or 0
            if not rate and elapsed:
                rate = (values["n"] - values.get("initial", 0)) / elapsed
            values["rate_whole"] = f"{rate:,.0f}" if rate else "?"
            values["n_whole"] = f"{values['n']:,}"
            total = values.get("total")
            values["total_whole"] = f"{total:,}" if total is not None else "?"
            return values

    WholeRateBar.__qualname__ = "WholeRateBar"  # as if defined at the module's top level
    return WholeRateBar


def __getattr__(name: str) -> Any:
    """``cli.WholeRateBar`` is built on first access (PEP 562): importing the CLI needs no
    tqdm."""
    if name == "WholeRateBar":
        return _whole_rate_bar()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _progress_bar(unit: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A tqdm bar on a terminal, created at the first update, once the total is known.

    tqdm is imported now, before the command starts its work, so a missing ``[cli]``
    extra stops it before it has changed anything.
    """
    bar_class = _whole_rate_bar()
    bars: list[Any] = []

    def update(done: int, total: int) -> None:
        if not bars:
            bars.append(bar_class(total=total, unit=unit, file=sys.stderr,
                                  disable=total < 1000 or not sys.stderr.isatty()))
        bar = bars[0]
        bar.total = total
        bar.update(done - bar.n)

    def close() -> None:
        if bars:
            bars[0].close()

    return update, close


def _cmd_seed(memory: SyncBuyerConversationMemory, args: argparse.Namespace) -> int:
    admin = _cli_module("admin", "the seed command")
    if args.from_file is not None:
        try:
            content = args.from_file.read_bytes()
        except OSError as exc:
            raise MemoryCoreError(f"cannot read {args.from_file}: {exc.strerror}") from None
        scenarios = admin.parse_scenarios(content, str(args.from_file))
        result = admin.seed_scenarios(memory, scenarios, overwrite_real=args.overwrite_real,
                                      actor=_actor(args))
        print(f"seeded {result.written} buyer(s) from {args.from_file}"
              + _kept_note(result.kept_real))
        return EXIT_OK
    check_id_prefix(args.id_prefix, name="--id-prefix", allow_empty=False)
    ttl_days = memory.config.ttl_days
    # the store's TTL, so each buyer keeps what is left of it since its last interaction
    options = SeedOptions(count=args.count, seed=args.seed, id_prefix=args.id_prefix,
                          ttl_days_range=(ttl_days, ttl_days))
    options.validate()
    update, close = _progress_bar("buyers")
    # a Ctrl-C stops between batches: saves counted by the store, handled by the progress
    saves_before = memory.get_stats()["saves"]
    handled, at_batch_end = 0, False
    stop = _StopBetweenBatches()

    def after_batch(done: int, total: int) -> None:
        nonlocal handled, at_batch_end
        handled, at_batch_end = done, True  # every write sent so far has been answered
        update(done, total)
        stop.check()
        at_batch_end = False

    result = None
    try:
        with stop:
            items = (buyer.as_save_item() for buyer in generate_buyers(options))
            result = admin.seed_generated(memory, items, options.count, after_batch,
                                          SEED_BATCH, actor=_actor(args))
    except KeyboardInterrupt:
        pass  # said below, once the bar is closed
    finally:
        close()
    if result is None:
        return _seed_stopped(memory, args, options,
                             written=memory.get_stats()["saves"] - saves_before,
                             handled=handled, exact=at_batch_end)
    print(f"seeded {result.written} QA buyers (seed {options.seed})"
          + _kept_note(result.kept_real))
    return EXIT_OK


class _StopBetweenBatches:
    """Ctrl-C during a batched write stops it between two batches, not inside one.

    The first SIGINT only asks to stop; :meth:`check`, called once a batch is answered,
    then raises KeyboardInterrupt, so the count of what was written is exact. A second
    Ctrl-C raises at once (the batch in flight is then in doubt). Outside the main
    thread, or when SIGINT already has a handler of its own, nothing changes.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _StopBetweenBatches:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._request)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _request(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt


def _seed_stopped(memory: SyncBuyerConversationMemory, args: argparse.Namespace,
                  options: SeedOptions, *, written: int, handled: int, exact: bool) -> int:
    """One line and one audit entry for a seed stopped by Ctrl-C; exit 130.

    ``written``: the buyers the store confirmed; ``handled``: those plus the ids left
    alone as real buyers, as of the last finished batch. Not ``exact``: a batch was in
    flight, and up to one batch more may have been written too.
    """
    kept = max(handled - written, 0)
    in_doubt = 0 if exact else min(SEED_BATCH, options.count - written - kept)
    audit.append_event(memory.client, memory.prefix, actor=_actor(args), action="seed",
                       outcome="interrupted",
                       detail=f"{written} generated of {options.count}, {kept} real kept"
                       + (f", up to {in_doubt} more in flight" if in_doubt else "")
                       + "; stopped by Ctrl-C")
    print(f"stopped: wrote {'' if exact else 'at least '}{written:,} of {options.count:,} QA "
          f"buyers (seed {options.seed}) before Ctrl-C"
          + (f" (up to {in_doubt:,} more may have been written by the batch in flight)"
             if in_doubt else "")
          + (f"; {kept:,} id(s) hold real buyers and were left alone" if kept else "")
          + "; run the same command again to write them all, or clear --qa-seeds to "
            "remove them", file=sys.stderr)
    return EXIT_INTERRUPTED


def _kept_note(kept_real: tuple[str, ...]) -> str:
    if not kept_real:
        return ""
    display_id = _cli_module("inventory", "the seed command").display_id
    shown = ", ".join(printable(display_id(i), 80) for i in kept_real[:10])
    return (f"; {len(kept_real)} id(s) hold real buyers and were left alone: {shown}"
            + (" ..." if len(kept_real) > 10 else ""))


# tables and text that fit a terminal ------------------------------------------------------

def _char_width(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _fit(value: object, width: int, *, right: bool = False) -> str:
    """``value`` escaped (text from Redis), cut with ``…`` to ``width`` terminal columns and
    padded to exactly that many, counting wide characters as two."""
    text = printable(value if isinstance(value, str) else str(value))
    used, kept = 0, []
    total = sum(_char_width(c) for c in text)
    room = width if total <= width else width - 1
    for char in text:
        char_width = _char_width(char)
        if used + char_width > room:
            break
        kept.append(char)
        used += char_width
    shown = "".join(kept) + ("…" if total > width else "")
    used += 1 if total > width else 0
    pad = " " * max(width - used, 0)
    return pad + shown if right else shown + pad


def _row(*cells: tuple[object, int] | tuple[object, int, bool]) -> str:
    """One table line: (value, width[, right-aligned]) per cell, a space between cells."""
    parts = [_fit(cell[0], cell[1], right=len(cell) > 2 and bool(cell[2])) for cell in cells]
    return " ".join(parts).rstrip()


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


#: Inventory table columns: what, value, count, share (85 columns in all).
_INV = (24, 40, 10, 8)


def _inventory_lines(report: dict[str, Any], problems: Any, prefix: str) -> list[str]:
    """The inventory as aligned tables; every label from a header is escaped and cut."""
    admin = _cli_module("admin", "the inventory table")
    what, value, count, share = _INV
    total, buyers = report["total"], report["buyers"]
    ttl = report["ttl"]
    lines = [_row((f"Keys under {prefix}:*", what + value + 1), ("KEYS", count, True),
                  ("SHARE", share, True))]
    for label, number in (("readable buyers", buyers), ("QA seeds", report["qa_seeded"]),
                          ("corrupt, foreign or unreadable", report["corrupt"]),
                          ("legacy (run migrate-legacy)", report["legacy"]),
                          ("no TTL", ttl["no_ttl"]),
                          ("expiring within 24 hours", ttl["expiring_24h"])):
        lines.append(_row(("  " + label, what + value + 1), (f"{number:,}", count, True),
                          (_share(number, total), share, True)))
    lines.append(_row(("  all keys", what + value + 1), (f"{total:,}", count, True)))
    lines += ["", _row(("BUYERS BY", what), ("VALUE", value), ("BUYERS", count, True),
                       ("SHARE", share, True))]
    sections = (("temperature", report["by_temperature"]), ("persona", report["by_persona"]),
                ("journey stage", report["by_journey_stage"]), ("codec", report["by_codec"]),
                ("encryption key", report["by_key_id"]),
                ("days of TTL left", ttl["days_remaining"]))
    for title, counts in sections:
        whole = sum(counts.values())
        for index, (label, number) in enumerate(counts.items()):
            lines.append(_row((title if index == 0 else "", what), (label, value),
                              (f"{number:,}", count, True), (_share(number, whole), share, True)))
        if not counts:
            lines.append(_row((title, what), ("–", value)))
    ratio = report["compression_ratio"]
    lines += ["", "STORAGE (buyer records, payload and header bytes)",
              _row(("  stored", what), (f"{report['stored_bytes']:,} bytes", value),
                   (admin.format_bytes(report["stored_bytes"]), 20)),
              _row(("  original JSON", what), (f"{report['original_bytes']:,} bytes", value),
                   (admin.format_bytes(report["original_bytes"]), 20)),
              _row(("  compression ratio", what),
                   (f"{ratio:.1f}x" if ratio is not None else "–", value))]
    if report["undecryptable"]:
        lines.append(_row(("  undecryptable here", what), (f"{report['undecryptable']:,}",
                                                             value)))
    if len(problems):
        lines += ["", _row(("PROBLEM KEYS", 18), ("CONTACT ID", 30), ("WHAT IS WRONG", 50))]
        for row in problems.head(20).itertuples():
            lines.append(_row((row.status, 18), (row.contact_id, 30), (row.problem, 50)))
        listed = report["total"] - report["buyers"]  # problems holds a capped list
        if listed > 20:
            lines.append(f"  … and {listed - 20:,} more (use --json"
                         + (f": it lists the first {len(problems):,})" if listed > len(problems)
                            else ")"))
    return lines


def _draw_count(text: str) -> int:
    """``--sample``'s value: a whole number of draws in range, or argparse's usage error."""
    try:
        sampling = _cli_module("sampling", "inventory --sample")
    except extras.MissingExtra as exc:  # argparse's one line and exit 2, naming the extra
        raise argparse.ArgumentTypeError(str(exc)) from None
    try:
        draws: int = sampling.check_draws(int(text))
        return draws
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            str(exc) if text.strip().lstrip("-").isdigit() else
            f"a whole number of draws is needed, got {text!r}") from exc


def _sample_lines(sample: sampling.Sample, figures: dict[str, sampling.Estimate]) -> list[str]:
    """The estimates as a table: figure, estimate, 95 % margin."""
    lines = [f"Sample: {sample.draws:,} random keys of {sample.keys_in_database:,} "
             f"({len(sample.frame):,} under the prefix) in {sample.seconds:.1f} s; "
             "estimates for the whole store, 95% margins", "",
             _row(("FIGURE", 32), ("ESTIMATE", 18, True), ("MARGIN", 16, True))]
    for name, estimate in figures.items():
        lines.append(_row((f"  {name}", 32), (f"{round(estimate.value):,}", 18, True),
                          (f"± {round(estimate.margin):,}", 16, True)))
    stored, original = figures["stored bytes"].value, figures["original bytes"].value
    if stored:
        lines += ["", f"  compression ratio ≈ {original / stored:.1f}x"]
    lines += ["", "An exact count reads every key: run inventory without --sample."]
    return lines


def _cmd_sampled_inventory(memory: SyncBuyerConversationMemory,
                           args: argparse.Namespace) -> int:
    sampling = _cli_module("sampling", "inventory --sample")
    update, close = _progress_bar("draws")
    try:
        sample = sampling.sample_summaries(memory, args.sample, seed=args.seed,
                                           progress=update)
    finally:
        close()
    figures = sampling.sample_report(sample)
    if args.json:
        _print_json({"sample": {"draws": sample.draws,
                                "keys_in_database": sample.keys_in_database,
                                "keys_read": len(sample.frame),
                                "seconds": round(sample.seconds, 3), "confidence": 0.95},
                     "estimates": {name: {"value": round(e.value), "margin": round(e.margin)}
                                   for name, e in figures.items()}})
        return EXIT_OK
    print("\n".join(_sample_lines(sample, figures)))
    return EXIT_OK


def _cmd_inventory(memory: SyncBuyerConversationMemory, args: argparse.Namespace) -> int:
    if args.sample is not None:
        if args.verify or args.prometheus:
            print("error: --sample reads only some records, --verify and --prometheus need "
                  "them all: use one or the other", file=sys.stderr)
            return EXIT_USAGE
        return _cmd_sampled_inventory(memory, args)
    if args.seed is not None:
        print("error: --seed goes with --sample", file=sys.stderr)
        return EXIT_USAGE
    scan_report = _cli_module("report", "the inventory").scan_report
    update, close = _progress_bar("keys")
    verified, close_verified = _progress_bar("records verified")
    try:  # folded while it streams: memory does not grow with the buyers
        report, problems = scan_report(memory, progress=update, verify=args.verify,
                                       verify_progress=verified)
    finally:
        close()
        close_verified()
    if args.prometheus:
        sys.stdout.write(keyspace_exposition(report))
        return EXIT_OK
    status = None if args.no_estimate else _dictionary_status(memory)
    if args.json:
        report["problems"] = problems.to_dict(orient="records")
        report["dictionary"] = status.as_dict() if status is not None else None
        _print_json(report)
        return EXIT_OK
    lines = _inventory_lines(report, problems, memory.prefix)
    print("\n".join([*lines, "", *_status_lines(report["stored_bytes_by_dictionary"], status)]))
    return EXIT_OK


def _dictionary_status(memory: SyncBuyerConversationMemory) -> Any:
    """What a fresh dictionary would save (sampled), with a progress line on stderr."""
    dictionary_use = _cli_module("dictionary_use", "the dictionary estimate")
    if sys.stderr.isatty():  # as the progress bars: never in a cron job's mail
        print("estimating what a fresh compression dictionary would save…",
              file=sys.stderr, flush=True)
    return dictionary_use.dictionary_status(memory)


def _status_lines(by_dictionary: dict[str, int] | None, status: Any) -> list[str]:
    """Bytes per dictionary (when a scan told them) and the saving a fresh one would bring."""
    admin = _cli_module("admin", "the dictionary figures")
    what, value, _count, share = _INV
    wide = WIDTH - what - 3  # sentences, not table cells
    lines = ["COMPRESSION DICTIONARY"]
    if status is not None:
        current = status.saves_use
        if current == "none trained yet":
            current += " (run train-dictionary)"
        lines.append(_row(("  saves use", what), (current, wide)))
    if by_dictionary is not None:
        whole = sum(by_dictionary.values())
        for label, title in (("current", "stored with it"), ("older", "with an older one"),
                             ("none", "with none")):
            number = by_dictionary.get(label, 0)
            lines.append(_row(("  " + title, what), (admin.format_bytes(number), value),
                              (_share(number, whole), share, True)))
    if status is None:
        return lines
    if not status.estimated:
        lines.append(_row(("  a fresh dictionary", what), (f"no estimate: {status.why_not}",
                                                          wide)))
    else:
        lines.append(_row(("  a fresh dictionary", what), (
            f"would save {status.saving:.0%} (estimated on {status.measured:,} "
            "sampled states)", wide)))
    return lines


# show ------------------------------------------------------------------------------------

def _text(value: object, limit: int = 80) -> str:
    """Any JSON value of a state as one escaped line: a planted record may hold anything."""
    if value is None or value == "":
        return "–"
    if isinstance(value, str):
        return printable(value, limit)
    return printable(orjson.dumps(value, default=str).decode(), limit)


def _counted(count: int, noun: str) -> str:
    """ "1 message", "2 messages"."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _label(value: object, limit: int = 30) -> str:
    """A category of the state ("first_time_buyer") as words ("first time buyer")."""
    if isinstance(value, str) and value.isidentifier():
        value = value.replace("_", " ")
    return _text(value, limit)


def _duration(seconds: float) -> str:
    """``29 days 23 h``, ``5 h 12 min``, ``40 s``: readable at every scale."""
    seconds = max(int(seconds), 0)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} day{'s' if days != 1 else ''}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    return f"{minutes} min" if minutes else f"{seconds} s"


def _when(value: object) -> str:
    """A stored timestamp as ``2025-06-01 12:00 UTC``; as given (escaped) if unreadable."""
    moment = parse_timestamp(value) if isinstance(value, str) else None
    if moment is None:
        return _text(value, 40)
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _money(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,.0f}"
    return _text(value, 20)


def _budget(value: object) -> str:
    if not isinstance(value, dict):
        return _text(value)
    low, high = value.get("min"), value.get("max")
    currency = f" {_text(value.get('currency'), 8)}" if value.get("currency") else ""
    return f"{_money(low)} to {_money(high)}{currency}"


def _preferences(value: object) -> str:
    if not isinstance(value, dict):
        return _text(value)
    parts = []
    if value.get("bedrooms") is not None:
        parts.append(f"{_text(value.get('bedrooms'), 6)} bed")
    if value.get("bathrooms") is not None:
        parts.append(f"{_text(value.get('bathrooms'), 6)} bath")
    if value.get("property_type"):
        parts.append(_label(value.get("property_type"), 30))
    places = value.get("neighborhoods")
    if isinstance(places, list) and places:
        parts.append("in " + ", ".join(_text(p, 40) for p in places[:4])
                     + (" …" if len(places) > 4 else ""))
    return ", ".join(parts) or _text(value)


def _summary_lines(record: StoredRecord, state: dict[str, Any]) -> list[str]:
    summary = record.summary
    if record.ttl_seconds is None:
        ttl = "no TTL (never expires)"
    else:
        expires = datetime.now(UTC).timestamp() + record.ttl_seconds
        ttl = (f"TTL {_duration(record.ttl_seconds)} left (expires "
               f"{datetime.fromtimestamp(expires, UTC):%Y-%m-%d %H:%M} UTC)")
    if summary is None:
        storage = "legacy pickled record (run migrate-legacy)"
    else:
        codec = printable(summary.codec, 20) + (f" with dictionary {summary.dictionary_id}"
                                                if summary.dictionary_id else "")
        storage = (f"stored {summary.stored_bytes:,} bytes of {summary.original_bytes:,} "
                   f"bytes JSON, {codec}, "
                   + (f"encrypted with key {printable(summary.key_id, 20)}"
                      if summary.key_id else "not encrypted"))
    history = state.get("conversation_history")
    objections = state.get("objection_history")
    open_objections = sum(1 for o in objections if isinstance(o, dict)
                          and not o.get("resolved")) if isinstance(objections, list) else 0
    lines = [
        f"contact {printable(record.contact_id, 120)}"
        + ("  (QA seed)" if state.get("qa_seed") is True else ""),
        f"  revision {record.revision} · {ttl}",
        f"  {storage}",
        f"  temperature {_label(state.get('buyer_temperature'), 20)} · persona "
        f"{_label(state.get('buyer_persona'), 30)} · stage "
        f"{_label(state.get('current_journey_stage'), 30)} · qualified "
        f"{'yes' if state.get('is_qualified') is True else 'no'}",
        f"  step {_label(state.get('current_qualification_step'), 30)} · urgency "
        f"{_label(state.get('urgency_level'), 20)} · financing "
        f"{_label(state.get('financing_status'), 20)} · scores: financial "
        f"{_text(state.get('financial_readiness_score'), 10)}, motivation "
        f"{_text(state.get('buying_motivation_score'), 10)}",
        f"  budget {_budget(state.get('budget_range'))} · wants "
        f"{_preferences(state.get('property_preferences'))}",
        f"  contact {_text(state.get('buyer_name'), 40)} · {_text(state.get('buyer_phone'), 30)}"
        f" · {_text(state.get('buyer_email'), 60)}",
        f"  last interaction {_when(state.get('last_interaction_timestamp'))} · "
        f"{_counted(len(history) if isinstance(history, list) else 0, 'message')} · "
        f"{_counted(len(objections) if isinstance(objections, list) else 0, 'objection')} "
        f"({open_objections} open)",
    ]
    return [line if len(line) <= WIDTH else line[:WIDTH - 1] + "…" for line in lines]


def _transcript_lines(state: dict[str, Any]) -> list[str]:
    """The conversation, oldest first: ``[time] buyer: text``, wrapped to 100 columns;
    every line escaped (a message is whatever the buyer typed, or whoever wrote Redis)."""
    history = state.get("conversation_history")
    messages = [m for m in history if isinstance(m, dict)] if isinstance(history, list) else []
    lines = [f"conversation ({len(messages)} messages, oldest first):"]
    for message in messages:
        who = {"user": "buyer", "assistant": "bot"}.get(str(message.get("role")),
                                                        _text(message.get("role"), 20))
        stamp = f"[{_when(message.get('timestamp'))}] " if message.get("timestamp") else ""
        content = message.get("content")
        text = content if isinstance(content, str) else _text(content, 2000)
        first = True
        for paragraph in text.split("\n"):
            lead = f"  {stamp}{who}: " if first else "      "
            wrapped = textwrap.wrap(printable(paragraph), width=WIDTH - 6,
                                    initial_indent=lead, subsequent_indent="      ",
                                    break_long_words=True, break_on_hyphens=False)
            lines.extend(wrapped or [lead.rstrip()])
            first = False
    return lines


def _unreadable_hint(exc: CorruptRecord, contact_id: str) -> str:
    """What to do about a record no load can read (it is that key's problem only)."""
    if isinstance(exc, UndecryptableRecord):
        return f"give this process the key it was encrypted with ({KEYS_ENV})"
    if isinstance(exc, MissingDictionary):
        return ("restore that dictionary, or delete the record with memory-core clear "
                f"{printable(contact_id, 120)}")
    return ("the bot treats it as no saved state; memory-core clear "
            f"{printable(contact_id, 120)} deletes it so the buyer starts fresh")


def _cmd_show(memory: SyncBuyerConversationMemory, args: argparse.Namespace) -> int:
    try:
        record = memory.read_record(args.contact_id)
    except CorruptRecord as exc:  # data, not usage: exit 1, "no readable buyer"
        print(f"error: buyer {printable(args.contact_id, 120)} has no readable record: "
              f"{printable(str(exc), 300)}; {_unreadable_hint(exc, args.contact_id)}",
              file=sys.stderr)
        return EXIT_NOT_FOUND
    if record is None:
        print(f"no such buyer: {printable(args.contact_id, 120)} (never saved, expired or "
              "cleared)", file=sys.stderr)
        return EXIT_NOT_FOUND
    if args.reveal_pii:  # no audit entry, no reveal
        audit.append_event(memory.client, memory.prefix, actor=_actor(args),
                           action="reveal_pii", contact_id=record.contact_id, outcome="shown",
                           strict=True)
    state = record.state if args.reveal_pii else mask_pii(record.state)
    if args.json:
        _print_json(state)
        return EXIT_OK
    print("\n".join([*_summary_lines(record, state), "", *_transcript_lines(state)]))
    return EXIT_OK


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except (KeyboardInterrupt, EOFError):  # Ctrl-C or Ctrl-D at the question: a no
        print()
        return False


def _actor(args: argparse.Namespace) -> str:
    return audit.cli_actor(args.actor)


def _cmd_clear(memory: SyncBuyerConversationMemory, args: argparse.Namespace) -> int:
    admin = _cli_module("admin", "the clear command")
    actor = _actor(args)
    if args.qa_seeds:
        try:
            ids = admin.qa_seed_ids(memory)
        except KeyboardInterrupt:
            print("stopped: clear --qa-seeds interrupted by Ctrl-C while finding the QA "
                  "seeds; nothing deleted", file=sys.stderr)
            return EXIT_INTERRUPTED
        if not ids:
            print("no QA-seeded buyers to clear")
            return EXIT_OK
        if not args.yes and not _confirm(f"delete {len(ids)} QA-seeded buyers?"):
            print("not confirmed; nothing deleted (pass --yes to skip the question)",
                  file=sys.stderr)
            return EXIT_USAGE
        try:
            deleted = admin.clear_qa_seeds(memory, ids, actor=actor)
        except KeyboardInterrupt:
            return _clear_stopped(memory, args, ids)
        print(f"deleted {deleted} QA-seeded buyers")
        return EXIT_OK
    shown = printable(args.contact_id, 120)
    revision = admin.current_revision(memory, args.contact_id)
    if revision is None:  # said before any question: nothing to confirm
        print(f"no such buyer: {shown} (never saved, expired or cleared); nothing deleted",
              file=sys.stderr)
        return EXIT_NOT_FOUND
    if not args.yes and not _confirm(
            f"delete the saved state of {shown} (revision {revision}) permanently?"):
        print("not confirmed; nothing deleted (pass --yes to skip the question)",
              file=sys.stderr)
        return EXIT_USAGE
    if not admin.delete_buyer(memory, args.contact_id, expected_revision=revision,
                              actor=actor):
        print(f"no such buyer: {shown} (gone since it was looked up); nothing deleted",
              file=sys.stderr)
        return EXIT_NOT_FOUND
    print(f"cleared {shown}")
    return EXIT_OK


def _cmd_delete_key(memory: SyncBuyerConversationMemory, args: argparse.Namespace) -> int:
    """What the key is, a question, then the Server page's delete: refused (and audited)
    for a key a buyer loads from, and for one the bot rewrote since it was looked at."""
    admin = _cli_module("admin", "the delete-key command")
    found = admin.inspect_key(memory, args.contact_id)
    key = printable(found.key, 160)
    if not found.exists:
        print(f"no such key: {key} (never there, expired or deleted); nothing deleted",
              file=sys.stderr)
        return EXIT_NOT_FOUND
    size = f", {found.size_text}" if found.size_text else ""
    why = printable(found.problem, 300) if found.problem else "a buyer record"
    print(f"{key}: {printable(found.redis_type, 40)}{size}; {why}")
    if found.deletable and not args.yes and not _confirm("delete this key permanently?"):
        print("not confirmed; nothing deleted (pass --yes to skip the question)",
              file=sys.stderr)
        return EXIT_USAGE
    if not admin.delete_unreadable_key(memory, args.contact_id,  # refusals raise, audited
                                       expected_revision=found.revision, actor=_actor(args)):
        print(f"no such key: {key} (gone since it was looked at); nothing deleted",
              file=sys.stderr)
        return EXIT_NOT_FOUND
    print(f"deleted {key}")
    return EXIT_OK


def _clear_stopped(memory: SyncBuyerConversationMemory, args: argparse.Namespace,
                   ids: list[str]) -> int:
    """``clear --qa-seeds`` stopped by Ctrl-C: count what is gone, say it, audit it; 130.

    The deletions run in server-side steps whose replies were cut short, so what was
    deleted is counted from the keys that are left.
    """
    try:
        remaining = memory.count_present([memory.raw_key_for(i) for i in ids])
    except MemoryCoreError:  # Redis went away too: the generic line, without a count
        return _stopped(memory, args)
    gone = len(ids) - remaining
    audit.append_event(memory.client, memory.prefix, actor=_actor(args),
                       action="clear_qa_seeds", outcome="interrupted",
                       detail=f"{gone} of {len(ids)} gone, {remaining} left; stopped by Ctrl-C")
    print(f"stopped: deleted {gone:,} of {len(ids):,} QA-seeded buyers before Ctrl-C (counted "
          f"from the keys left: {remaining:,}); run clear --qa-seeds again to delete the rest",
          file=sys.stderr)
    return EXIT_INTERRUPTED


def _cmd_migrate(memory: SyncBuyerConversationMemory, args: argparse.Namespace) -> int:
    admin = _cli_module("admin", "the migrate-legacy command")
    report = admin.migrate_legacy(memory, dry_run=args.dry_run, actor=_actor(args))
    verb = "would migrate" if args.dry_run else "migrated"
    print(f"legacy records: {report.found} found, {verb} {report.migrated}, "
          f"{len(report.failed)} failed")
    for contact_id, reason in report.failed.items():
        print(f"  {printable(contact_id, 120)}: {printable(reason, 300)}")
    return EXIT_OK


#: Per-process facts of get_stats() that mean nothing in a one-shot CLI process.
_PROCESS_STATS = ("calls", "saves", "loads", "hits", "misses", "clears", "conflicts",
                  "errors", "corrupt", "undecryptable", "refused", "skipped", "circuit_open",
                  "dictionary_id")


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _ago(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    return _duration((datetime.now(UTC) - moment).total_seconds()) + " ago"


def _server_lines(facts: dict[str, Any], cost: admin.ServerMemory) -> list[str]:
    admin = _cli_module("admin", "the stats command")
    limit = ("no limit" if cost.maxmemory_bytes == 0 else admin.format_bytes(
        cost.maxmemory_bytes)) + (f", policy {cost.maxmemory_policy}"
                                  if cost.maxmemory_policy else "")
    share = cost.maxmemory_share
    rows = [
        ("Redis version", printable(str(facts.get("redis_version") or "unknown"), 40)),
        ("keys in this database", f"{facts['keys']:,}" if facts.get("keys") is not None
         else "–"),
        ("used memory", _bytes_both(cost.used_memory_bytes)),
        ("peak", _bytes_both(cost.peak_memory_bytes)),
        ("per key (estimate)", _bytes_both(None if cost.per_buyer_estimate_bytes is None
                                           else round(cost.per_buyer_estimate_bytes))),
        ("maxmemory", limit if cost.maxmemory_bytes is not None else "–"),
        ("share of maxmemory", _percent(share) + ("  WARNING: near the limit, Redis will "
                                                  "evict or refuse writes" if cost.near_limit
                                                  else "")),
        ("evicted keys", f"{cost.evicted_keys:,}" if cost.evicted_keys is not None else "–"),
        ("fragmentation ratio", f"{cost.fragmentation_ratio:.2f}"
         if cost.fragmentation_ratio is not None else "–"),
    ]
    lines = ["Server"] + [_row(("  " + name, 26), (value, WIDTH - 27)) for name, value in rows]
    lines += [_row(("  note", 26), (problem, WIDTH - 27)) for problem in cost.problems]
    return lines


def _topology_lines(found: topology.Topology | None) -> list[str]:
    """A cluster's primaries (keys, slots, replicas) and its replicas, as two tables, each
    node's state last; nothing for a single server."""
    if found is None:
        return []
    lines = [_row((f"Cluster ({found.source})", WIDTH)),
             _row(("  " + topology.summary_line(found), WIDTH)),
             _row(("  PRIMARY", 34), ("KEYS", 10, True), ("SLOTS", 7, True),
                  ("RANGES", 7, True), ("REPLICAS", 9, True), ("STATE", 28))]
    for node in found.primaries:
        lines.append(_row(
            ("  " + node.address, 34), (_number(node.keys), 10, True),
            (_number(node.slots), 7, True), (_number(node.slot_ranges), 7, True),
            (_number(node.replicas), 9, True), (_node_state(node), 28)))
    if found.replicas:
        lines.append(_row(("  REPLICA", 34), ("OF PRIMARY", 36), ("STATE", 28)))
    for replica in found.replicas:
        lines.append(_row(("  " + replica.address, 34), (replica.primary_address or "?", 36),
                          (_node_state(replica), 28)))
    if found.unlisted:
        lines.append(f"  … and {found.unlisted:,} more nodes, not listed (use --json for "
                     "the counts)")
    for listed in found.nodes:
        if listed.problem:
            lines.append(_row((f"  {listed.address}: {listed.problem}", WIDTH)))
    if found.problem:
        lines.append(_row((f"  note: {found.problem}", WIDTH)))
    return [*lines, ""]


def _number(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def _node_state(node: topology.PrimaryNode | topology.ReplicaNode) -> str:
    if not node.reachable:
        return "UNREACHABLE"
    return "ok, flagged failing" if node.failing else "ok"


def _bytes_both(count: int | None) -> str:
    if count is None:
        return "–"
    return f"{_cli_module('admin', 'the stats command').format_bytes(count)} ({count:,} bytes)"


def _health_lines(report: health.HealthReport, interval: int) -> list[str]:
    lines = ["Bot processes (published health)"]
    if not report.seen:
        lines += ["  none published: set health_publish_seconds in the bot's config (or",
                  "  MEMORY_CORE_HEALTH_PUBLISH_SECONDS in its environment)"
                  + (f"; this config publishes every {interval} s" if interval else "")]
    else:
        lines.append(f"  {report.seen} process{'es' if report.seen != 1 else ''} · hit rate "
                     f"{_percent(report.hit_rate)} · "
                     f"error rate {_percent(report.error_rate)} · breaker open in "
                     f"{report.breaker_open} · last seen {_ago(report.last_seen)}")
        lines.append(_row(("  PROCESS", 44), ("CALLS", 10, True), ("HIT RATE", 9, True),
                          ("ERRORS", 8, True), ("BREAKER", 8), ("LAST SEEN", 16)))
        for process in report.processes[:20]:
            lines.append(_row(("  " + process.process, 44),
                              (f"{process.counters.get('calls', 0):,}", 10, True),
                              (_percent(process.hit_rate), 9, True),
                              (f"{process.counters.get('errors', 0):,}", 8, True),
                              ("open" if process.circuit_open else "closed", 8),
                              (_ago(process.published_at), 16)))
        if report.seen > 20:
            lines.append(f"  … and {report.seen - 20} more (use --json)")
    if report.unreadable:
        lines.append(f"  {len(report.unreadable)} record(s) under the health prefix are not "
                     "health records (planted or damaged); ignored")
    if report.truncated:
        lines.append(f"  only the first {health.MAX_PROCESSES} records were read")
    return lines


def _health_json(report: health.HealthReport) -> dict[str, Any]:
    return {"processes_seen": report.seen, "hit_rate": report.hit_rate,
            "error_rate": report.error_rate, "skipped_rate": report.skipped_rate,
            "breaker_open": report.breaker_open, "last_seen": report.last_seen,
            "totals": report.totals, "unreadable_records": len(report.unreadable),
            "truncated": report.truncated,
            "processes": [dataclasses.asdict(p) for p in report.processes]}


def _cmd_stats(memory: SyncBuyerConversationMemory, args: argparse.Namespace) -> int:
    settings = {k: v for k, v in memory.get_stats().items() if k not in _PROCESS_STATS}
    admin = _cli_module("admin", "the stats command")
    facts = admin.describe_store(memory)
    # the keys of this database (buyers and the rest): used memory over them is the cost
    # per key, as the dashboard's estimate
    cost = admin.server_memory(memory, buyer_keys=facts.get("keys"))
    report = health.read_health(memory.client, memory.prefix)
    use = None if args.quick else _dictionary_use(memory)
    status = None if args.quick else _dictionary_status(memory)
    if args.json:
        memory_figures = dataclasses.asdict(cost)
        memory_figures.update(maxmemory_share=cost.maxmemory_share,
                              near_limit=cost.near_limit)
        found = facts.get("topology")
        server = {**facts, "topology": found.as_dict() if found is not None else None}
        _print_json({"settings": settings, "server": server, "memory": memory_figures,
                     "health": _health_json(report),
                     "dictionaries": use.as_dict() if use is not None else None,
                     "dictionary": status.as_dict() if status is not None else None})
        return EXIT_OK
    lines = ["Settings"] + [_row(("  " + name, 26), (_text(value, WIDTH - 27), WIDTH - 27))
                            for name, value in settings.items()]
    lines += ["", *_server_lines(facts, cost), "",
              *_topology_lines(facts.get("topology")),
              *_health_lines(report, memory.config.health_publish_seconds)]
    if use is not None:
        lines += ["", *_status_lines(use.stored_bytes_by_dictionary, status), "",
                  *_dictionary_lines(use, memory.config.use_dictionary)]
    print("\n".join(lines))
    return EXIT_OK


def _cmd_train(memory: SyncBuyerConversationMemory, args: argparse.Namespace) -> int:
    admin = _cli_module("admin", "the train-dictionary command")
    dictionary_use = _cli_module("dictionary_use", "the train-dictionary command")
    worth = ""
    if args.if_worthwhile:
        try:
            estimate = dictionary_use.estimate_saving(memory, sample_size=args.samples,
                                                      dict_size_bytes=args.size_kb * 1024)
        except InvalidState as exc:  # too few states yet: a cron job tries again later
            print(f"not trained: {exc}")
            return EXIT_OK
        against = (f"dictionary {estimate.current_id}" if estimate.current_id
                   else "no dictionary")
        share = (f"{estimate.saving:.0%} of the payload bytes of {estimate.measured:,} "
                 f"sampled states against {against}")
        if estimate.saving * 100 < args.min_saving:
            print(f"not trained: a new dictionary would save {share} (under "
                  f"--min-saving {args.min_saving}%)")
            return EXIT_OK
        worth = f" (estimated to save {share})"
    trained = admin.train_dictionary_from_store(memory, sample_size=args.samples,
                                                dict_size_bytes=args.size_kb * 1024,
                                                actor=_actor(args))
    print(f"trained dictionary {trained.dictionary_id} ({trained.dictionary_bytes} bytes) on "
          f"{trained.samples} states{worth}; new saves use it, older records stay readable")
    return EXIT_OK


def _dictionary_use(memory: SyncBuyerConversationMemory) -> dictionary_use.DictionaryUse:
    """Which dictionaries the records name, from one walk of the keys (with a bar)."""
    module = _cli_module("dictionary_use", "the dictionaries commands")
    update, close = _progress_bar("keys")
    try:
        use: dictionary_use.DictionaryUse = module.dictionary_use(memory, progress=update)
        return use
    finally:
        close()


def _dictionary_lines(use: dictionary_use.DictionaryUse, use_dictionary: bool) -> list[str]:
    lines = [_row(("DICTIONARY", 12), ("BYTES", 12, True), ("RECORDS", 12, True), ("", 10))]
    for found in use.dictionaries:
        lines.append(_row((str(found.dictionary_id), 12), (f"{found.stored_bytes:,}", 12, True),
                          (f"{found.records:,}", 12, True),
                          ("current" if found.current else "unused" if not found.records
                           else "", 10)))
    if not use.dictionaries:
        lines.append("  no dictionary stored" + (
            ": run train-dictionary once states are stored" if use_dictionary
            else " (and this config uses none: use_dictionary is false)"))
    lines.append(f"{use.records_without:,} record(s) use no dictionary")
    for dictionary_id, count in use.missing.items():
        lines.append(f"{count:,} record(s) name dictionary {dictionary_id}, which is not "
                     "stored: they cannot load until it is restored")
    return lines


def _cmd_dictionaries(memory: SyncBuyerConversationMemory, args: argparse.Namespace) -> int:
    use = _dictionary_use(memory)
    if args.json:
        _print_json(use.as_dict())
    else:
        print("\n".join(_dictionary_lines(use, memory.config.use_dictionary)))
    return EXIT_OK


def _cmd_prune_dictionaries(memory: SyncBuyerConversationMemory,
                            args: argparse.Namespace) -> int:
    dictionary_use = _cli_module("dictionary_use", "the prune-dictionaries command")
    use = _dictionary_use(memory)
    unused = use.removable()
    if not unused:
        print("no unused dictionary: nothing to remove")
        return EXIT_OK
    dictionary_use.check_prunable(memory, use)  # before asking: refused right after training
    listed = ", ".join(f"{d.dictionary_id} ({d.stored_bytes:,} bytes)" for d in unused)
    if not args.yes and not _confirm(f"remove {len(unused)} unused dictionary(ies): {listed}?"):
        print("not confirmed; nothing removed (pass --yes to skip the question)",
              file=sys.stderr)
        return EXIT_USAGE
    removed = dictionary_use.prune_dictionaries(memory, use, actor=_actor(args))
    freed = sum(d.stored_bytes for d in unused if d.dictionary_id in removed)
    print(f"removed {len(removed)} unused dictionary(ies) ({freed:,} bytes): "
          + ", ".join(map(str, removed)))
    return EXIT_OK


def _cmd_reencrypt(memory: SyncBuyerConversationMemory, args: argparse.Namespace) -> int:
    keyring = memory.config.keyring
    if keyring is None:
        raise ConfigError(f"no encryption keys are configured: set {KEYS_ENV} (or "
                          f"{KEYS_FILE_ENV}) with the new key first; make one with "
                          "`python -m memory_core generate-key`")
    update, close = _progress_bar("records")  # a missing extra says so before the question
    pending, done = rotation.pending_contact_ids(memory)
    print(f"{len(pending)} record(s) to rewrite under key {keyring.primary_id}; "
          f"{done} already are")
    if pending and not args.yes and not _confirm(
            f"rewrite {len(pending)} record(s) under key {keyring.primary_id}?"):
        print("not confirmed; nothing rewritten (pass --yes to skip the question)",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        report = rotation.reencrypt_store(memory, actor=_actor(args), progress=update)
    finally:
        close()
    print(f"rewritten {report.rewritten}, skipped {report.skipped}, failed {report.failed}"
          f" (dictionaries rewritten: {report.dictionaries_rewritten})")
    for key, reason in report.dictionary_failures.items():
        print(f"  dictionary {key} not rewritten: {printable(reason)} (records that need it "
              "are listed as failed; a dictionary no record names can be deleted)")
    if report.changed_meanwhile:
        print(f"  {report.changed_meanwhile} were saved by a bot while this ran; run again "
              "to check they are under the first key")
    for contact_id, reason in report.failures.items():
        print(f"  failed {printable(contact_id, LOG_CHARS)}: {printable(reason)}")
    return EXIT_OK if not report.failed else EXIT_NOT_FOUND


def _search(memory: SyncBuyerConversationMemory, args: argparse.Namespace) -> list[str]:
    """The verified matches of --phone / --email (audited); unreadable candidates on stderr."""
    kind = "phone" if args.phone is not None else "email"
    found = erasure.find_candidates(memory, phone=args.phone, email=args.email,
                                    scan=args.scan)
    audit.append_event(memory.client, memory.prefix, actor=_actor(args),
                       action=f"find_by_{kind}", contact_id=",".join(found.contact_ids),
                       outcome=f"{len(found.contact_ids)} found")
    for contact_id, reason in found.unreadable.items():
        print(f"cannot check {printable(contact_id, LOG_CHARS)}, it may have this {kind}: "
              f"{printable(reason)}; configure its key, or erase it by contact id",
              file=sys.stderr)
    return found.contact_ids


def _cmd_find(memory: SyncBuyerConversationMemory, args: argparse.Namespace) -> int:
    found = _search(memory, args)
    for contact_id in found:
        print(printable(contact_id, LOG_CHARS))
    if not found:
        print("no stored state has that " + ("phone number" if args.phone else "email")
              + _scan_hint(memory, args), file=sys.stderr)
        return EXIT_NOT_FOUND
    return EXIT_OK


def _scan_hint(memory: SyncBuyerConversationMemory, args: argparse.Namespace) -> str:
    if args.scan or memory.config.lookup_secret is None:
        return ""
    return ("; states saved before the lookup existed (or under another lookup secret) "
            "are found with --scan")


def _cmd_erase(memory: SyncBuyerConversationMemory, args: argparse.Namespace) -> int:
    if (args.contact_id is None) == (args.phone is None and args.email is None):
        raise InvalidState("give a contact id, or --phone, or --email (exactly one)")
    if args.contact_id is not None:
        ids = [validate_contact_id(args.contact_id)]
    else:
        ids = _search(memory, args)
        if not ids:
            print("no stored state has that " + ("phone number" if args.phone else "email")
                  + "; nothing erased" + _scan_hint(memory, args), file=sys.stderr)
            return EXIT_NOT_FOUND
    shown = ", ".join(printable(i, LOG_CHARS) for i in ids[:10]) + (" ..." if len(ids) > 10
                                                                     else "")
    if not args.yes and not _confirm(f"erase {len(ids)} buyer(s) ({shown}) permanently?"):
        print("not confirmed; nothing erased (pass --yes to skip the question)",
              file=sys.stderr)
        return EXIT_USAGE
    # exactly the ids confirmed; the phone or email only names the request in the receipt
    receipt = erasure.erase(memory, contact_ids=ids, phone=args.phone, email=args.email,
                            actor=_actor(args))
    print(receipt.to_json())
    return EXIT_OK if receipt.erased else EXIT_NOT_FOUND


def _cmd_reindex(memory: SyncBuyerConversationMemory, args: argparse.Namespace) -> int:
    update, close = _progress_bar("records")
    try:
        report = rotation.reindex_lookup(memory, actor=_actor(args), progress=update)
    finally:
        close()
    print(f"indexed {report.indexed} buyer(s); {report.without_contact_details} without a "
          f"phone or email; {report.unreadable} unreadable here")
    return EXIT_OK


COMMANDS: dict[str, Callable[[SyncBuyerConversationMemory, argparse.Namespace], int]] = {
    "seed": _cmd_seed, "inventory": _cmd_inventory, "show": _cmd_show, "clear": _cmd_clear,
    "delete-key": _cmd_delete_key,
    "migrate-legacy": _cmd_migrate, "stats": _cmd_stats, "train-dictionary": _cmd_train,
    "dictionaries": _cmd_dictionaries, "prune-dictionaries": _cmd_prune_dictionaries,
    "reencrypt": _cmd_reencrypt, "find": _cmd_find, "erase": _cmd_erase,
    "reindex": _cmd_reindex,
}


def _cmd_generate_key(args: argparse.Namespace) -> int:
    print(generate_key_pair(args.key_id))
    return EXIT_OK


def _cmd_hash_password(args: argparse.Namespace) -> int:
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise InvalidState("the two passwords differ; nothing printed")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        print(hash_password(password))
    except ValueError as exc:  # an empty or unusable password
        raise InvalidState(f"{exc}; nothing printed") from None
    return EXIT_OK


#: Commands that need no Redis (and no configuration).
OFFLINE_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "generate-key": _cmd_generate_key, "hash-password": _cmd_hash_password,
}


def _redis_url(given: str | None) -> str:
    """--redis-url, else $REDIS_URL, else the default; an empty or blank one is refused.

    An empty value is nearly always an unset shell variable (``--redis-url "$URL"``), and
    falling back would quietly act on another Redis than the one meant.
    """
    if given is not None:
        if not given.strip():
            raise ConnectionURLError(
                "--redis-url is empty (an unset shell variable?): give a Redis URL such as "
                f"{DEFAULT_REDIS_URL}, or leave the option out to use ${REDIS_URL_ENV}")
        return given
    from_environment = os.environ.get(REDIS_URL_ENV)
    if from_environment is None:
        return DEFAULT_REDIS_URL
    if not from_environment.strip():
        raise ConnectionURLError(
            f"{REDIS_URL_ENV} is set but empty: set it to a Redis URL such as "
            f"{DEFAULT_REDIS_URL}, unset it to use that default, or pass --redis-url")
    return from_environment


#: Commands that write, and the audit action of each (as the writes themselves name it).
_WRITE_ACTIONS = {"seed": "seed", "clear": "clear", "delete-key": "delete_key",
                  "migrate-legacy": "migrate_legacy",
                  "train-dictionary": "train_dictionary",
                  "prune-dictionaries": "prune_dictionaries", "reencrypt": "reencrypt",
                  "erase": "erase", "reindex": "reindex"}


def _stopped(memory: SyncBuyerConversationMemory, args: argparse.Namespace) -> int:
    """Any command stopped by Ctrl-C: one line, an audit entry if it writes; exit 130."""
    action = _WRITE_ACTIONS.get(args.command)
    if action is None or getattr(args, "dry_run", False):
        print(f"stopped: {args.command} interrupted by Ctrl-C; it changed nothing",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.command == "clear" and args.qa_seeds:
        action = "clear_qa_seeds"
    audit.append_event(memory.client, memory.prefix, actor=_actor(args), action=action,
                       outcome="interrupted",
                       detail="stopped by Ctrl-C; what it wrote before stays written, how "
                              "much is not known here")
    print(f"stopped: {args.command} interrupted by Ctrl-C; what it wrote before stays written "
          "(each buyer whole or not at all): run it again to finish", file=sys.stderr)
    return EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return _main(args)
    except KeyboardInterrupt:  # before the command began, or a second Ctrl-C
        print(f"stopped: {args.command} interrupted by Ctrl-C", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(args: argparse.Namespace) -> int:
    if args.command in OFFLINE_COMMANDS:
        try:
            return OFFLINE_COMMANDS[args.command](args)
        except MemoryCoreError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        url = _redis_url(args.redis_url)
        config = load_config(args.config)
        target = parse_target(url)
        if target.is_demo:
            extras.require("fakeredis", "demo", "a memory:// store")
        memory = SyncBuyerConversationMemory.from_url(url, config)
    except MemoryCoreError as exc:
        print(f"error: {printable(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](memory, args)
    except KeyboardInterrupt:
        return _stopped(memory, args)
    except StoreUnavailable as exc:
        print(f"error: cannot reach Redis at {target.redacted_url} "
              f"({printable(str(exc))}); check that it runs "
              "and that --redis-url / REDIS_URL is right. Every buyer is written or deleted "
              "whole or not at all: rerun the command once Redis answers to finish the job",
              file=sys.stderr)
        return EXIT_USAGE
    except MemoryCoreError as exc:
        print(f"error: {printable(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except redis.RedisError as exc:
        print(f"error: Redis at {target.redacted_url} refused the command: "
              f"{printable(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        memory.close()
