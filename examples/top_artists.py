"""Luigi's "top artists" example as plain functions: fake daily streams, counts per artist, the top 10."""

from __future__ import annotations

import datetime
import random

ARTISTS = [
    "Abba", "Air", "Arcade Fire", "Beach House", "Bjork", "Blur", "Bon Iver", "Burial", "Caribou",
    "Daft Punk", "Deerhunter", "Elbow", "Feist", "Grimes", "Interpol", "Justice", "Kraftwerk",
    "Low", "Massive Attack", "Mogwai", "Moderat", "Portishead", "Radiohead", "Robyn", "Sigur Ros",
    "Slowdive", "Spoon", "Stereolab", "The Knife", "The National", "Tycho", "Wilco", "Yo La Tengo",
]
TRACKS_PER_ARTIST = 12
STREAMS_PER_DAY = 1000


def fake_streams(date: datetime.date, output: str) -> None:
    """Write one day of plays, `timestamp<TAB>artist<TAB>track`, the same every time for a date."""
    rng = random.Random(date.toordinal())  # the seed comes from the date: reruns give the same file
    # a skewed popularity so the top 10 is stable and meaningful
    weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(ARTISTS))]
    order = ARTISTS[:]
    rng.shuffle(order)
    midnight = datetime.datetime(date.year, date.month, date.day)
    lines = []
    for artist in rng.choices(order, weights=weights, k=STREAMS_PER_DAY):
        moment = midnight + datetime.timedelta(seconds=rng.randrange(86400))
        track = f"{artist} track {rng.randrange(TRACKS_PER_ARTIST) + 1}"
        lines.append(f"{moment.isoformat()}\t{artist}\t{track}\n")
    lines.sort()
    with open(output, "w", encoding="utf-8") as handle:
        handle.writelines(lines)


def count_streams(paths) -> dict:
    """Streams per artist over the given daily files."""
    counts: dict = {}
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                artist = line.split("\t", 2)[1]
                counts[artist] = counts.get(artist, 0) + 1
    return counts


def aggregate(inputs, output: str) -> None:
    """Count streams per artist over every day of the interval; write `artist<TAB>count`, sorted by artist."""
    counts = count_streams(inputs)
    with open(output, "w", encoding="utf-8") as handle:
        for artist in sorted(counts):
            handle.write(f"{artist}\t{counts[artist]}\n")


def aggregate_days(inputs, outputs) -> None:
    """The batched form of aggregate: one call counts a run of days, each into its own output."""
    for day_inputs, output in zip(inputs, outputs, strict=True):
        aggregate(day_inputs, output)


def sum_counts(inputs, output: str) -> None:
    """Add up `artist<TAB>count` files (a count per day) into one, sorted by artist: the same bytes as aggregate."""
    from examples.counts import read_counts

    counts: dict = {}
    for path in inputs:
        for artist, streams in read_counts(path).items():
            counts[artist] = counts.get(artist, 0) + streams
    with open(output, "w", encoding="utf-8") as handle:
        for artist in sorted(counts):
            handle.write(f"{artist}\t{counts[artist]}\n")


def top10(input: str, output: str, interval) -> None:
    """Write the ten most streamed artists: `date_from date_to artist streams`, highest first, ties by artist."""
    from examples.counts import read_counts

    counts = read_counts(input)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:10]
    with open(output, "w", encoding="utf-8") as handle:
        for artist, streams in ranked:
            handle.write(f"{interval.start.isoformat()}\t{interval.end.isoformat()}\t{artist}\t{streams}\n")
