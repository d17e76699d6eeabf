"""Read `artist<TAB>count` lines from a TSV file or from a Spark output directory of part files."""

from __future__ import annotations

import gzip
import os


def read_counts(path: str) -> dict[str, int]:
    """Counts per artist from `path`: a file, or a directory whose `part-*` files hold the lines (Spark's output)."""
    counts: dict[str, int] = {}
    for part in _part_files(path):
        opener = gzip.open if part.endswith(".gz") else open
        with opener(part, "rt", encoding="utf-8", newline="\n") as lines:
            for line in lines:
                line = line.rstrip("\n")
                if not line:
                    continue
                artist, _, count = line.rpartition("\t")
                # Summed, not assigned: a partitioned output may spread one key over part files.
                counts[artist] = counts.get(artist, 0) + int(count)
    return counts


def _part_files(path: str) -> list[str]:
    if not os.path.isdir(path):
        return [path]
    if not os.path.exists(os.path.join(path, "_SUCCESS")):
        # Without _SUCCESS the writing job died part way: counting what is there would be silently wrong.
        raise ValueError(f"'{path}' is not a complete Spark output (no _SUCCESS)")
    names = sorted(os.listdir(path))
    # Spark also leaves _SUCCESS, .part-*.crc checksums and _temporary/ there: only part-* hold data.
    return [os.path.join(path, n) for n in names if n.startswith("part-") and not n.endswith(".crc")]
