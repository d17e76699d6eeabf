"""The Spark variant of artist_streams: count streams per artist over an interval's daily files."""

from __future__ import annotations

# The daily files are `timestamp<TAB>artist<TAB>track` with no header. Quoting is switched off
# (quote "") and whitespace kept on write, so every artist string survives byte for byte and the
# counts equal a plain Python `line.split("\t")` count.
STREAMS_SCHEMA = "timestamp STRING, artist STRING, track STRING"
READ_OPTIONS = {"sep": "\t", "header": "false", "quote": "", "encoding": "UTF-8"}
WRITE_OPTIONS = {
    "sep": "\t",
    "header": "false",
    "quote": "",
    "ignoreLeadingWhiteSpace": "false",
    "ignoreTrailingWhiteSpace": "false",
}


def count_by_artist(spark, inputs):
    """A DataFrame (artist, count) over all `inputs`, read in one go, one row per artist."""
    streams = spark.read.options(**READ_OPTIONS).schema(STREAMS_SCHEMA).csv(list(inputs))
    return streams.groupBy("artist").count()


def aggregate(spark, inputs, output):
    """Write `artist<TAB>count` lines, sorted by artist, as one part file in the directory `output`."""
    counts = count_by_artist(spark, inputs)
    # One small sorted file: a byte order sort (Spark compares UTF-8 bytes, i.e. code points, like Python).
    counts.repartition(1).sortWithinPartitions("artist").write.mode("overwrite").options(**WRITE_OPTIONS).csv(output)
