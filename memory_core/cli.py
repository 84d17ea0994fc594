"""``python -m memory_core`` / ``memory-core``: operate the buyer memory from a shell.

A thin shell over :mod:`memory_core.admin`, :mod:`memory_core.inventory` and
:mod:`memory_core.seeding`. Exit codes: 0 ok, 1 not found, 2 usage or connection error;
every failure prints one line on stderr that says what to do.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import redis
from tqdm import tqdm

from memory_core import admin, audit, erasure, inventory, rotation
from memory_core.config import CONFIG_PATH_ENV, load_config
from memory_core.connection import DEFAULT_REDIS_URL, REDIS_URL_ENV, parse_target
from memory_core.crypto import KEYS_ENV, KEYS_FILE_ENV, generate_key_pair
from memory_core.errors import ConfigError, InvalidState, MemoryCoreError, StoreUnavailable
from memory_core.passwords import hash_password
from memory_core.safetext import LOG_CHARS, printable, printable_json
from memory_core.seeding import SeedOptions, generate_buyers
from memory_core.state import mask_pii, validate_contact_id
from memory_core.store import SyncBuyerConversationMemory

EXIT_OK, EXIT_NOT_FOUND, EXIT_USAGE = 0, 1, 2
logger = logging.getLogger("memory_core.cli")


class _Parser(argparse.ArgumentParser):
    """argparse exits with 2 on usage errors already; keep its message to one line."""

    def error(self, message: str) -> Any:  # type: ignore[override]
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
    parser = _Parser(prog="memory-core", description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default=None,
                        help=f"Redis URL (default: ${REDIS_URL_ENV}, then {DEFAULT_REDIS_URL}); "
                             "memory://NAME for an in-process demo store")
    parser.add_argument("--config", default=None,
                        help=f"YAML config file (default: ${CONFIG_PATH_ENV}, then built-in "
                             "defaults)")
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

    inv = commands.add_parser("inventory", help="summary of every buyer key")
    inv.add_argument("--json", action="store_true", help="print one JSON object")
    inv.add_argument("--verify", action="store_true",
                     help="also read and decode every record, to find payloads that no "
                          "longer decode (reads the whole keyspace)")

    show = commands.add_parser("show", help="print one buyer's state (PII masked)")
    show.add_argument("contact_id")
    show.add_argument("--json", action="store_true", help="print the state as JSON only")
    show.add_argument("--reveal-pii", action="store_true", help="show name, phone and email")

    clear = commands.add_parser("clear", help="delete one buyer, or every QA seed")
    target = clear.add_mutually_exclusive_group(required=True)
    target.add_argument("contact_id", nargs="?")
    target.add_argument("--qa-seeds", action="store_true", help="delete all QA-seeded buyers")
    clear.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    migrate = commands.add_parser("migrate-legacy", help="rewrite pickled legacy records")
    migrate.add_argument("--dry-run", action="store_true", help="report, change nothing")

    commands.add_parser("stats", help="settings in force and server facts")

    train = commands.add_parser("train-dictionary",
                                help="train a zstd dictionary on stored states and use it")
    train.add_argument("--samples", type=_bounded_int(20, 100_000), default=2000,
                       help="states to train on (20-100000)")
    train.add_argument("--size-kb", type=_bounded_int(1, 1024), default=64,
                       help="dictionary size in KiB (1-1024)")

    generate = commands.add_parser("generate-key",
                                   help="print a fresh KEY_ID:BASE64 encryption key pair")
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


def _progress_bar(unit: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A tqdm bar on a terminal, created at the first update, once the total is known."""
    bars: list[tqdm[Any]] = []

    def update(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, unit=unit, file=sys.stderr,
                             disable=total < 1000 or not sys.stderr.isatty()))
        bar = bars[0]
        bar.total = total
        bar.update(done - bar.n)

    def close() -> None:
        if bars:
            bars[0].close()

    return update, close


def _cmd_seed(memory: SyncBuyerConversationMemory, args: argparse.Namespace) -> int:
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
    options = SeedOptions(count=args.count, seed=args.seed, id_prefix=args.id_prefix)
    options.validate()
    update, close = _progress_bar("buyers")
    try:
        items = (buyer.as_save_item() for buyer in generate_buyers(options))
        result = admin.seed_generated(memory, items, options.count, update,
                                      actor=_actor(args))
    finally:
        close()
    print(f"seeded {result.written} QA buyers (seed {options.seed})"
          + _kept_note(result.kept_real))
    return EXIT_OK


def _kept_note(kept_real: tuple[str, ...]) -> str:
    if not kept_real:
        return ""
    shown = ", ".join(printable(inventory.display_id(i), 80) for i in kept_real[:10])
    return (f"; {len(kept_real)} id(s) hold real buyers and were left alone: {shown}"
            + (" ..." if len(kept_real) > 10 else ""))


def _cmd_inventory(memory: SyncBuyerConversationMemory, args: argparse.Namespace) -> int:
    update, close = _progress_bar("keys")
    verified, close_verified = _progress_bar("records verified")
    try:
        frame = inventory.scan_summaries(memory, progress=update, verify=args.verify,
                                         verify_progress=verified)
    finally:
        close()
        close_verified()
    report = inventory.summarize_inventory(frame)
    if args.json:
        report["problems"] = inventory.problem_records(frame).to_dict(orient="records")
        _print_json(report)
        return EXIT_OK
    ratio = report["compression_ratio"]
    lines = [
        f"keys: {report['total']}  buyers: {report['buyers']}  QA seeds: {report['qa_seeded']}"
        f"  corrupt/foreign: {report['corrupt']}  legacy: {report['legacy']}",
        "temperature: " + _counts(report["by_temperature"]),
        "persona: " + _counts(report["by_persona"]),
        "journey stage: " + _counts(report["by_journey_stage"]),
        "codec: " + _counts(report["by_codec"]),
        "encryption key: " + _counts(report["by_key_id"])
        + (f"  undecryptable: {report['undecryptable']}" if report["undecryptable"] else ""),
        f"stored: {report['stored_bytes']:,} bytes  original: {report['original_bytes']:,} "
        f"bytes  ratio: {ratio if ratio is not None else '-'}",
        f"TTL: no TTL {report['ttl']['no_ttl']}, expiring in 24h {report['ttl']['expiring_24h']}"
        "; days remaining " + _counts(report["ttl"]["days_remaining"]),
    ]
    problems = inventory.problem_records(frame)
    for row in problems.head(20).itertuples():
        lines.append(f"  {row.status}: {printable(row.contact_id, 120)}: "
                     f"{printable(row.problem, 300)}")
    if len(problems) > 20:
        lines.append(f"  ... and {len(problems) - 20} more (use --json)")
    print("\n".join(lines))
    return EXIT_OK


def _counts(values: dict[str, int]) -> str:
    """``label count, ...``; labels are header fields anyone who can write a key chose."""
    return ", ".join(f"{printable(k, 60)} {v}" for k, v in values.items()) or "-"


def _cmd_show(memory: SyncBuyerConversationMemory, args: argparse.Namespace) -> int:
    record = memory.read_record(args.contact_id)
    if record is None:
        print(f"no saved state for contact {printable(args.contact_id, 120)} (never saved, "
              "expired or cleared)", file=sys.stderr)
        return EXIT_NOT_FOUND
    if args.reveal_pii:  # no audit entry, no reveal
        audit.append_event(memory.client, memory.prefix, actor=_actor(args),
                           action="reveal_pii", contact_id=record.contact_id, outcome="shown",
                           strict=True)
    state = record.state if args.reveal_pii else mask_pii(record.state)
    if args.json:
        _print_json(state)
        return EXIT_OK
    summary = record.summary
    ttl = "no expiry" if record.ttl_seconds is None else f"{record.ttl_seconds / 86400:.1f} days"
    print(f"contact {printable(record.contact_id, 120)}: revision {record.revision}, TTL {ttl}"
          + ("  (legacy pickled record)" if record.legacy else "")
          + (f"  stored {summary.stored_bytes} B of {summary.original_bytes} B, "
             f"codec {printable(summary.codec, 40)}"
             + (f" with dictionary {summary.dictionary_id}" if summary.dictionary_id else "")
             if summary else ""))
    _print_json(state)
    return EXIT_OK


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def _actor(args: argparse.Namespace) -> str:
    return audit.cli_actor(args.actor)


def _cmd_clear(memory: SyncBuyerConversationMemory, args: argparse.Namespace) -> int:
    actor = _actor(args)
    if args.qa_seeds:
        ids = admin.qa_seed_ids(memory)
        if not ids:
            print("no QA-seeded buyers to clear")
            return EXIT_OK
        if not args.yes and not _confirm(f"delete {len(ids)} QA-seeded buyers?"):
            print("not confirmed; nothing deleted (pass --yes to skip the question)",
                  file=sys.stderr)
            return EXIT_USAGE
        print(f"deleted {admin.clear_qa_seeds(memory, ids, actor=actor)} QA-seeded buyers")
        return EXIT_OK
    shown = printable(args.contact_id, 120)
    revision = admin.current_revision(memory, args.contact_id)
    if revision is None:
        print(f"no saved state for contact {shown}; nothing deleted", file=sys.stderr)
        return EXIT_NOT_FOUND
    if not args.yes and not _confirm(
            f"delete the saved state of {shown} (revision {revision})?"):
        print("not confirmed; nothing deleted (pass --yes to skip the question)",
              file=sys.stderr)
        return EXIT_USAGE
    if not admin.delete_buyer(memory, args.contact_id, expected_revision=revision,
                              actor=actor):
        print(f"no saved state for contact {shown}; nothing deleted", file=sys.stderr)
        return EXIT_NOT_FOUND
    print(f"cleared {shown}")
    return EXIT_OK


def _cmd_migrate(memory: SyncBuyerConversationMemory, args: argparse.Namespace) -> int:
    report = admin.migrate_legacy(memory, dry_run=args.dry_run, actor=_actor(args))
    verb = "would migrate" if args.dry_run else "migrated"
    print(f"legacy records: {report.found} found, {verb} {report.migrated}, "
          f"{len(report.failed)} failed")
    for contact_id, reason in report.failed.items():
        print(f"  {printable(contact_id, 120)}: {printable(reason, 300)}")
    return EXIT_OK


#: Per-process facts of get_stats() that mean nothing in a one-shot CLI process.
_PROCESS_STATS = ("saves", "loads", "hits", "misses", "clears", "conflicts", "errors",
                  "corrupt", "undecryptable", "refused", "skipped", "circuit_open",
                  "dictionary_id")


def _cmd_stats(memory: SyncBuyerConversationMemory, args: argparse.Namespace) -> int:
    settings = {k: v for k, v in memory.get_stats().items() if k not in _PROCESS_STATS}
    _print_json({"settings": settings, "server": admin.describe_store(memory)})
    return EXIT_OK


def _cmd_train(memory: SyncBuyerConversationMemory, args: argparse.Namespace) -> int:
    trained = admin.train_dictionary_from_store(memory, sample_size=args.samples,
                                                dict_size_bytes=args.size_kb * 1024,
                                                actor=_actor(args))
    print(f"trained dictionary {trained.dictionary_id} ({trained.dictionary_bytes} bytes) on "
          f"{trained.samples} states; new saves use it, older records stay readable")
    return EXIT_OK


def _cmd_reencrypt(memory: SyncBuyerConversationMemory, args: argparse.Namespace) -> int:
    keyring = memory.config.keyring
    if keyring is None:
        raise ConfigError(f"no encryption keys are configured: set {KEYS_ENV} (or "
                          f"{KEYS_FILE_ENV}) with the new key first; make one with "
                          "`python -m memory_core generate-key`")
    pending, done = rotation.pending_contact_ids(memory)
    print(f"{len(pending)} record(s) to rewrite under key {keyring.primary_id}; "
          f"{done} already are")
    if pending and not args.yes and not _confirm(
            f"rewrite {len(pending)} record(s) under key {keyring.primary_id}?"):
        print("not confirmed; nothing rewritten (pass --yes to skip the question)",
              file=sys.stderr)
        return EXIT_USAGE
    update, close = _progress_bar("records")
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
    "migrate-legacy": _cmd_migrate, "stats": _cmd_stats, "train-dictionary": _cmd_train,
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command in OFFLINE_COMMANDS:
        try:
            return OFFLINE_COMMANDS[args.command](args)
        except MemoryCoreError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    url = args.redis_url or os.environ.get(REDIS_URL_ENV) or DEFAULT_REDIS_URL
    try:
        config = load_config(args.config)
        target = parse_target(url)
        memory = SyncBuyerConversationMemory.from_url(url, config)
    except MemoryCoreError as exc:
        print(f"error: {printable(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](memory, args)
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
