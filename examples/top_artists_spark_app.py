"""A standalone spark-submit app counting streams per artist: `top_artists_spark_app.py OUTPUT INPUT...`."""

# Self-contained on purpose: in cluster deploy mode only this file is shipped, so it must not import
# its sibling examples.top_artists_spark; tests check both write the same counts.

import sys

STREAMS_SCHEMA = "timestamp STRING, artist STRING, track STRING"
READ_OPTIONS = {"sep": "\t", "header": "false", "quote": "", "encoding": "UTF-8"}
WRITE_OPTIONS = {
    "sep": "\t",
    "header": "false",
    "quote": "",
    "ignoreLeadingWhiteSpace": "false",
    "ignoreTrailingWhiteSpace": "false",
}


def main(argv):
    if len(argv) < 3:
        print(f"usage: {argv[0]} OUTPUT INPUT...", file=sys.stderr)
        return 2
    output, inputs = argv[1], argv[2:]
    from pyspark.sql import SparkSession

    # Master, name and conf come from spark-submit's command line.
    spark = SparkSession.builder.getOrCreate()
    try:
        streams = spark.read.options(**READ_OPTIONS).schema(STREAMS_SCHEMA).csv(inputs)
        counts = streams.groupBy("artist").count()
        counts.repartition(1).sortWithinPartitions("artist").write.mode("overwrite").options(**WRITE_OPTIONS).csv(
            output
        )
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
