"""Payload layouts side by side, without Redis: bytes, encode and decode CPU per state.

For each corpus and layout (``json``: zstd over the state's JSON, as memory_core 1.0;
``packed``: the history in streams, timestamps as deltas), a dictionary is trained the
way ``train-dictionary`` does (PII replaced, in that layout) on other states than those
measured, and every measured state goes through the record codec a save and a load use:
``encode_record`` (serialise, pack, compress) and ``decode_state`` (decompress, unpack).
Times are per state, p50 over all states, best of three passes (CPU only: the figures a
load or save adds on top of its Redis round trip).

The corpora's timestamps are whole seconds; ``--microseconds`` re-stamps every message
as ``datetime.now(UTC).isoformat()`` writes them (with a fraction), as a bot does.

    python benchmarks/bench_layout.py --states 2000
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import training_and_measured

from memory_core.dictionaries import train_dictionary, training_sample
from memory_core.record import decode_state, encode_record, parse_summary
from memory_core.state import dump_json, parse_timestamp

LAYOUTS = ("json", "packed")


def with_microseconds(states: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """The same states, each message stamped with a fraction of a second."""
    rng = random.Random(seed)
    out = []
    for state in states:
        history = []
        for message in state["conversation_history"]:
            moment = parse_timestamp(message["timestamp"])
            assert moment is not None
            moment += timedelta(microseconds=rng.randrange(1, 1_000_000))
            history.append({**message, "timestamp": moment.isoformat()})
        out.append({**state, "conversation_history": history})
    return out


def measure(layout: str, training: list[dict[str, Any]], measured: list[dict[str, Any]],
            level: int, dict_kb: int) -> dict[str, float]:
    pack = layout == "packed"
    dictionary = train_dictionary([training_sample(s, pack=pack) for s in training],
                                  dict_kb * 1024)
    encoded: list[bytes] = []
    encode_us: list[float] = []
    decode_us: list[float] = []
    for attempt in range(3):
        encode_pass, decode_pass, records = [], [], []
        for state in measured:
            started = time.perf_counter_ns()
            record = encode_record(state, dump_json(state), compress_threshold_bytes=256,
                                   codec="zstd", zstd_level=level, dictionary=dictionary,
                                   pack=pack)
            encode_pass.append((time.perf_counter_ns() - started) / 1000)
            records.append(record)
        for record in records:
            started = time.perf_counter_ns()
            decode_state(record, parse_summary(record), dictionary)
            decode_pass.append((time.perf_counter_ns() - started) / 1000)
        if attempt == 0 or statistics.median(encode_pass) < statistics.median(encode_us):
            encode_us = encode_pass
        if attempt == 0 or statistics.median(decode_pass) < statistics.median(decode_us):
            decode_us = decode_pass
        encoded = records
    for state, record in zip(measured, encoded, strict=True):  # every state comes back
        assert decode_state(record, parse_summary(record), dictionary) == state
    return {"bytes": statistics.mean(len(r) for r in encoded),
            "encode_us": statistics.median(encode_us),
            "decode_us": statistics.median(decode_us)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=2000)
    parser.add_argument("--level", type=int, default=3, help="zstd level (default 3)")
    parser.add_argument("--dict-kb", type=int, default=64,
                        help="dictionary size in KiB (default 64, as train-dictionary)")
    parser.add_argument("--microseconds", action="store_true",
                        help="re-stamp messages with fractions of a second, as a bot does")
    args = parser.parse_args()
    print(f"{args.states:,} measured states per corpus, zstd {args.level}, {args.dict_kb} KiB "
          "dictionary trained on other states; record bytes (header + payload), CPU per "
          "state p50"
          + (", timestamps with microseconds" if args.microseconds else ""))
    print(f"{'corpus':10} {'layout':7} {'bytes':>7} {'vs json':>8} {'encode us':>10} "
          f"{'decode us':>10}")
    for corpus, (training, measured) in training_and_measured(args.states).items():
        if args.microseconds:
            training, measured = with_microseconds(training, 1), with_microseconds(measured, 2)
        results = {layout: measure(layout, training, measured, args.level, args.dict_kb)
                   for layout in LAYOUTS}
        for layout, result in results.items():
            share = result["bytes"] / results["json"]["bytes"]
            print(f"{corpus:10} {layout:7} {result['bytes']:7.0f} {share:8.2f} "
                  f"{result['encode_us']:10.1f} {result['decode_us']:10.1f}")


if __name__ == "__main__":
    main()
