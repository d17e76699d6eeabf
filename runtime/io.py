"""Open an action's inputs alike wherever they live: a local path or a store URL (s3://, gs://, hdfs://).

Python actions receive their inputs as locations; a local file opens as usual and a URL through the
store's fsspec filesystem, with the same settings flow uses (FLOW_S3_ENDPOINT_URL, ...):

    from flow.runtime.io import open_input

    def aggregate(inputs, output):
        with open(output, "w") as out:          # output is always a local temporary
            for location in inputs:
                with open_input(location) as lines:
                    ...
"""

from __future__ import annotations

import os

from .storage.urls import is_remote


def open_input(location: str, mode: str = "r", encoding: str = "utf-8", **kwargs):
    """Open a local path or a store URL for reading (text by default, "rb" for bytes)."""
    if not is_remote(location):
        return open(location, mode, encoding=None if "b" in mode else encoding, **kwargs)
    store = _stores().for_url(location)
    if "b" in mode:
        return store.open(location, mode, **kwargs)
    return store.open(location, mode, encoding=encoding, **kwargs)


def input_files(location: str) -> list:
    """The files of a directory input (local or remote), sorted, without `_SUCCESS` and hidden files."""
    if not is_remote(location):
        found = []
        for root, _, files in os.walk(location):
            found.extend(os.path.join(root, name) for name in files)
    else:
        store = _stores().for_url(location)
        base = store.path(location).rstrip("/") + "/"
        prefix = location[: len(location) - len(store.path(location))]
        found = [prefix + path for path in store.fs.find(base)]
    return sorted(path for path in found if not os.path.basename(path).startswith(("_", ".")))


def _stores():
    from .storage.stores import Stores

    return Stores()  # cheap: fsspec keeps one filesystem per set of options
