"""The top-artists actions for inputs on object storage: read through flow.runtime.io, write locally."""

from __future__ import annotations

from flow.runtime.io import open_input


def aggregate(inputs, output: str) -> None:
    """Count streams per artist over every day of the interval; write `artist<TAB>count`, sorted by artist."""
    counts: dict = {}
    for location in inputs:  # s3://... URLs: open_input reads them from the store
        with open_input(location) as lines:
            for line in lines:
                artist = line.split("\t", 2)[1]
                counts[artist] = counts.get(artist, 0) + 1
    with open(output, "w", encoding="utf-8") as handle:  # a local temporary: flow uploads it on success
        for artist in sorted(counts):
            handle.write(f"{artist}\t{counts[artist]}\n")


def top10(input: str, output: str, interval) -> None:
    """Write the ten most streamed artists: `date_from date_to artist streams`, highest first, ties by artist."""
    counts = {}
    with open_input(input) as lines:
        for line in lines:
            artist, _, count = line.rstrip("\n").rpartition("\t")
            counts[artist] = int(count)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:10]
    with open(output, "w", encoding="utf-8") as handle:
        for artist, streams in ranked:
            handle.write(f"{interval.start.isoformat()}\t{interval.end.isoformat()}\t{artist}\t{streams}\n")
