"""Codec choices without Redis: payload bytes and compress time per state.

Compares gzip -9 (the yardstick's codec, before hex doubles it) with zstd at several
levels, with and without a trained dictionary of two sizes, on both corpora; the
dictionary is trained on separate states (for the public corpus, on the other half of
its topic files).

    python benchmarks/bench_codec.py --states 2000
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import zstandard
from corpus import training_and_measured

from memory_core.dictionaries import train_dictionary
from memory_core.state import dump_json

LEVELS = (1, 3, 6, 9, 12, 19)
DICTIONARY_KB = (None, 64, 112)


def measure(label: str, compress: object, samples: list[bytes]) -> None:
    started = time.perf_counter()
    sizes = [len(compress(sample)) for sample in samples]  # type: ignore[operator]
    micros = (time.perf_counter() - started) / len(samples) * 1e6
    print(f"  {label:28} {statistics.mean(sizes):8.0f} B {micros:8.0f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=2000)
    args = parser.parse_args()
    corpora = training_and_measured(args.states)
    for name, (training, measured) in corpora.items():
        train = [dump_json(s) for s in training]
        samples = [dump_json(s) for s in measured]
        print(f"{name} corpus: {len(samples):,} states, mean JSON "
              f"{statistics.mean(map(len, samples)):,.0f} B   (mean payload, compress time)")
        measure("gzip -9 (yardstick)", gzip.compress, samples)
        for size_kb in DICTIONARY_KB:
            dictionary = train_dictionary(train, size_kb * 1024) if size_kb else None
            for level in LEVELS:
                compressor = zstandard.ZstdCompressor(level=level, dict_data=dictionary,
                                                      write_checksum=False)
                label = f"zstd {level:>2}" + (f" + {size_kb} KB dictionary" if size_kb else "")
                measure(label, compressor.compress, samples)


if __name__ == "__main__":
    main()
