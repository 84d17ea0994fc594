"""Which ``compress_threshold_bytes`` to default to: payload bytes per state by threshold.

States at or under the threshold are stored as plain JSON; larger ones are zstd-compressed
(level 3), with a 64 KB dictionary trained on other states or without one (a store where
``train-dictionary`` never ran). A compressed payload no smaller than the JSON is stored
plain either way. Measured on both corpora, as they are (mostly long chats) and cut to
their first 1-10 messages (new buyers: the small states a threshold decides about).

    python benchmarks/bench_threshold.py --states 2000
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import zstandard
from corpus import training_and_measured

from memory_core.dictionaries import train_dictionary
from memory_core.state import dump_json

THRESHOLDS = (0, 128, 256, 512, 1024, 2048, 5120)


def short(states: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """The same buyers after their first 1-10 messages."""
    rng = random.Random(seed)
    return [{**s, "conversation_history": s["conversation_history"][:rng.randint(1, 10)]}
            for s in states]


def stored(data: bytes, threshold: int, compressor: zstandard.ZstdCompressor) -> int:
    if len(data) <= threshold:
        return len(data)
    return min(len(data), len(compressor.compress(data)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=2000)
    args = parser.parse_args()
    corpora = training_and_measured(args.states)
    print("mean payload bytes per state (plain JSON at or under the threshold); "
          "last column: compress time per compressed state")
    print(f"{'corpus':>22} {'dictionary':>10} {'JSON':>7} "
          + " ".join(f"{'<=' + str(t):>7}" for t in THRESHOLDS) + f" {'us':>5}")
    for name, (training, measured) in corpora.items():
        dictionary = train_dictionary([dump_json(s) for s in training], 64 * 1024)
        for label, states in ((name, measured), (f"{name}, 1-10 msgs", short(measured, 5))):
            samples = [dump_json(s) for s in states]
            for with_dict in (True, False):
                compressor = zstandard.ZstdCompressor(
                    level=3, dict_data=dictionary if with_dict else None, write_checksum=False)
                started = time.perf_counter()
                for sample in samples:
                    compressor.compress(sample)
                micros = (time.perf_counter() - started) / len(samples) * 1e6
                means = [statistics.mean(stored(d, t, compressor) for d in samples)
                         for t in THRESHOLDS]
                print(f"{label:>22} {'64 KB' if with_dict else 'none':>10} "
                      f"{statistics.mean(map(len, samples)):>7,.0f} "
                      + " ".join(f"{m:>7,.0f}" for m in means) + f" {micros:>5.0f}",
                      flush=True)


if __name__ == "__main__":
    main()
