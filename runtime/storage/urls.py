"""Which locations are remote, how a URL splits into store, bucket and key, and what Spark calls them.

Imports nothing heavy: the compiler's checks, the planner and `flow status` ask these questions for
every task, and only a build that really touches a store imports fsspec and its implementation.
"""

from __future__ import annotations

from typing import NamedTuple


class Scheme(NamedTuple):
    """One kind of store: fsspec's protocol for it, the extra that installs it, what Spark calls it."""

    protocol: str
    extra: str
    package: str
    spark: str  # the scheme Hadoop's connectors read and write


SCHEMES = {
    "s3": Scheme("s3", "s3", "s3fs", "s3a"),
    "gs": Scheme("gcs", "gcs", "gcsfs", "gs"),
    "gcs": Scheme("gcs", "gcs", "gcsfs", "gs"),
    "hdfs": Scheme("hdfs", "hdfs", "pyarrow", "hdfs"),
}


class Location(NamedTuple):
    """A remote location split up: `s3://bucket/a/b.tsv` is ('s3', 'bucket', 'a/b.tsv')."""

    scheme: str
    bucket: str  # the bucket, or an HDFS name node (host:port), possibly empty for hdfs:///path
    key: str  # no leading slash

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.key}"

    @property
    def parent(self) -> str:
        """The prefix this location is listed under: 's3://bucket/a/' for 's3://bucket/a/b.tsv'."""
        head = self.key.rstrip("/").rpartition("/")[0]
        return f"{self.scheme}://{self.bucket}/{head + '/' if head else ''}"

    @property
    def name(self) -> str:
        return self.key.rstrip("/").rpartition("/")[2]


def scheme_of(location: str) -> str | None:
    """The scheme of a URL flow can store to ('s3', 'gs', ...), or None for a local path."""
    head, sep, _ = location.partition("://")
    if not sep or not head.isalnum():
        return None
    return head.lower()


def is_remote(location: str) -> bool:
    """Whether an output or input lives on a store rather than the local disk (any scheme://)."""
    return "://" in location and scheme_of(location) is not None


def split(url: str) -> Location:
    """Split a store URL into its parts; raises ValueError for a scheme flow does not know."""
    scheme = scheme_of(url)
    if scheme not in SCHEMES:
        known = ", ".join(f"{name}://" for name in SCHEMES)
        raise ValueError(f"'{url}' has a scheme flow cannot store to (it knows {known})")
    rest = url.partition("://")[2]
    bucket, _, key = rest.partition("/")
    return Location(scheme, bucket, key)


def spark_url(location: str) -> str:
    """The URL Spark's Hadoop connectors take for a location: s3a:// for s3://; local paths unchanged."""
    scheme = scheme_of(location)
    if scheme is None or scheme not in SCHEMES:
        return location
    return SCHEMES[scheme].spark + location[len(scheme):]
