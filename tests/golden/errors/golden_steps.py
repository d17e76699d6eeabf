"""Functions the golden Flowfiles name in python: and spark: actions (read by lint, never run)."""


def daily(date, output):
    """One file per day."""


def combine(inputs, output):
    """Many inputs into one file."""


def summarize(input, output, interval):
    """One input into one file, knowing the interval."""


def upload(output, bucket):
    """Asks for a name no task provides."""


def count_words(spark, inputs, output):
    """A spark function."""


def anything(**kwargs):
    """Takes whatever it is given."""
