"""Output patterns and external inputs on object stores: URLs parse, format and read back."""

import datetime

import pytest
from flow.compiler.checks import check
from flow.compiler.errors import FlowCheckError
from flow.compiler.graph import TaskFactory
from flow.compiler.parser import parse
from flow.compiler.resolve import resolve
from flow.compiler.types import parse_value

FLOWFILE = '''
external rule streams(date: date):
    output: "s3://logs-bucket/streams/{date:year=%Y/month=%m/day=%d}/streams.tsv"

rule counts(interval: interval):
    requires: streams(day) for day in interval
    output: dir "gs://warehouse/counts/{interval}"
    python: acts.count

rule top(interval: interval):
    requires: counts(interval)
    output: "hdfs://namenode:8020/top/{interval}.tsv"
    python: acts.top
'''


@pytest.fixture
def factory():
    return TaskFactory(check(parse(FLOWFILE)))


def test_urls_format_with_their_scheme(factory):
    day = factory.from_params("streams", {"date": datetime.date(2012, 6, 9)})
    assert day.output == "s3://logs-bucket/streams/year=2012/month=06/day=09/streams.tsv"
    counts = factory.from_params("counts", {"interval": parse_value("interval", "2012-06")})
    assert counts.output == "gs://warehouse/counts/2012-06"
    top = factory.from_params("top", {"interval": parse_value("interval", "2012-W23")})
    assert top.output == "hdfs://namenode:8020/top/2012-W23.tsv"


def test_urls_read_back_into_tasks(factory):
    [task] = resolve(factory, "s3://logs-bucket/streams/year=2012/month=06/day=09/streams.tsv")
    assert task.id == "streams(2012-06-09)"
    [task] = resolve(factory, "gs://warehouse/counts/2012-06")
    assert task.id == "counts(2012-06)"
    [task] = resolve(factory, "hdfs://namenode:8020/top/2012-W23.tsv")
    assert task.id == "top(2012-W23)"
    [task] = resolve(factory, "2012-W23.tsv")  # the last component alone, as for local files
    assert task.id == "top(2012-W23)"


@pytest.mark.parametrize("pattern, message", [
    ("ftp://bucket/x/{date}.tsv", "flow cannot store outputs at 'ftp://' URLs"),
    ("s3://{date}/x.tsv", "the bucket of 's3://{date}/x.tsv' must be written out, not made from parameters"),
    ("s3:///x/{date}.tsv", "must be written out"),
    ("s3://bucket/", "names a whole bucket"),
])
def test_bad_store_urls_are_errors(pattern, message):
    text = f'rule r(date: date):\n    output: "{pattern}"\n    python: acts.day\n'
    with pytest.raises(FlowCheckError) as caught:
        check(parse(text))
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.code == "E210" and message in diagnostic.message


def test_storage_block_is_checked_settings():
    block = ('storage:\n    s3:\n        endpoint-url: "http://127.0.0.1:9000"\n        region: "eu-west-1"\n'
             '    gs:\n        project: "analytics"\n\n')
    checked = check(parse(block + FLOWFILE))
    assert checked.storage == {"s3": {"endpoint-url": "http://127.0.0.1:9000", "region": "eu-west-1"},
                               "gs": {"project": "analytics"}}
