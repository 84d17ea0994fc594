"""Plot bench_memory.py results (JSON files) into one PNG for the README.

    python benchmarks/plot.py docs/bench-generated.json docs/bench-public.json \\
        --out docs/benchmarks.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

PANELS = (("bytes_per_buyer", "Redis memory per buyer (bytes)"),
          ("save_p50_us", "save p50 (µs)"),
          ("load_p50_us", "load p50 (µs); dashed: bare GET"),
          ("overview_s", "overview of 10k buyers (s)"))
COLORS = ("#9e9e9e", "#6baed6", "#2171b5")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.png"))
    args = parser.parse_args()
    runs = [json.loads(path.read_text()) for path in args.results]
    figure, axes = plt.subplots(len(runs), len(PANELS), figsize=(16, 3.6 * len(runs)),
                                squeeze=False)
    for row, run in enumerate(runs):
        names = [r["design"].replace("memory_core ", "").replace(" (pickle + hex gzip)", "")
                 for r in run["results"]]
        for column, (field, title) in enumerate(PANELS):
            axis = axes[row][column]
            values = [r[field] for r in run["results"]]
            bars = axis.bar(range(len(values)), values, color=COLORS[:len(values)])
            axis.bar_label(bars, fmt="%.0f" if values[0] > 10 else "%.2f", fontsize=8)
            if field == "load_p50_us":
                for index, r in enumerate(run["results"]):
                    axis.hlines(r["get_p50_us"], index - 0.4, index + 0.4, colors="black",
                                linestyles="dashed")
            axis.set_xticks(range(len(names)), names, rotation=12, fontsize=8)
            axis.set_title(f"{title}\n{run['corpus']} corpus, {run['buyers']:,} buyers",
                           fontsize=9)
    figure.suptitle(f"memory_core vs the yardstick, private redis-server on loopback "
                    f"({runs[0]['machine']}, {runs[0]['date']})", fontsize=11)
    figure.tight_layout()
    figure.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
