"""Object stores behind fsspec: bulk listing, create-only atomic publishing, removal.

One `ObjectStore` per scheme per process, its fsspec filesystem made on first use (so a build that
never touches a store never imports one). S3 lists key ranges itself, so the completeness of a
thousand outputs under one prefix costs one request, not a thousand.
"""

from __future__ import annotations

import os
from typing import Iterable

from . import settings as storage_settings
from .urls import SCHEMES, split

SUCCESS = "_SUCCESS"
LIST_PAGE = 1000  # S3's largest page; GCS's too

# What a completeness question asks of a name under a prefix.
FILE = "file"  # an object at exactly that key
DIR = "dir"  # a directory flow wrote: complete only with its _SUCCESS object
ANY_DIR = "any-dir"  # an external directory: complete when anything is under it


class StoreUnavailable(Exception):
    """A store cannot be used: its extra is not installed, or it refused us; the message says what to do."""


class ObjectStore:
    """One store reached through an fsspec filesystem: list, publish atomically, remove."""

    def __init__(self, scheme: str, options: dict):
        self.scheme = scheme
        self.options = options
        self._fs = None
        self._fs_pid = None

    @property
    def fs(self):
        """The fsspec filesystem, made on first use and again in a forked child."""
        if self._fs is None or self._fs_pid != os.getpid():
            self._fs = self._make_fs()
            self._fs_pid = os.getpid()
        return self._fs

    def _make_fs(self):
        info = SCHEMES[self.scheme]
        try:
            import fsspec

            return fsspec.filesystem(info.protocol, **self.options)
        except ImportError:
            raise StoreUnavailable(f"{self.scheme}:// locations need {info.package}: "
                                   f"pip install 'flow[{info.extra}]'") from None

    def path(self, url: str) -> str:
        """The path fsspec takes for a URL (the bucket and key, without the scheme)."""
        location = split(url)
        return f"{location.bucket}/{location.key}"

    # ------------------------------------------------------------------------ completeness

    def present(self, prefix_url: str, queries: dict) -> set:
        """The names under `prefix_url` (which ends with '/') that are complete.

        `queries` maps a name to FILE, DIR or ANY_DIR. Generic stores list the prefix once
        (recursively when a DIR is asked about, to see the _SUCCESS objects).
        """
        base = self.path(prefix_url)
        deep = DIR in queries.values()
        try:
            found = self.fs.find(base, withdirs=True, maxdepth=None if deep else 1, detail=True)
        except FileNotFoundError:
            return set()
        keys = [path[len(base):] + ("/" if info.get("type") == "directory" else "")
                for path, info in found.items() if path.startswith(base)]
        return _complete(queries, keys)

    # ------------------------------------------------------------------------ publishing

    def publish_file(self, local: str, url: str, replace: bool = False) -> bool:
        """Upload a finished local file to `url` in one piece; False if another writer published first.

        The object appears whole or not at all. Unless `replace` (a forced rebuild), the write is
        create-only where the store supports it, so of two writers exactly one publishes.
        """
        try:
            self.fs.put_file(local, self.path(url), mode="overwrite" if replace else "create")
        except FileExistsError:
            return False
        return True

    def publish_dir(self, local: str, url: str, replace: bool = False) -> bool:
        """Upload a finished local directory under `url`/, then its _SUCCESS object last.

        Parts of an earlier attempt that never got its _SUCCESS are removed first. False if another
        writer published the directory first (its _SUCCESS exists and `replace` is not set).
        """
        base = self.path(url).rstrip("/")
        if not replace and self._exists(f"{base}/{SUCCESS}"):
            return False
        self.clear_dir(url)
        parts, success = [], None
        for root, _, files in os.walk(local):
            for name in files:
                full = os.path.join(root, name)
                relative = os.path.relpath(full, local).replace(os.sep, "/")
                if relative == SUCCESS:
                    success = full
                elif not (name.startswith(".") and name.endswith(".crc")):  # Hadoop's checksum files
                    parts.append((full, f"{base}/{relative}"))
        if parts:
            self.fs.put([p[0] for p in parts], [p[1] for p in parts])
        if success is None:
            success = os.path.join(local, SUCCESS)
            open(success, "wb").close()
        return self.publish_file(success, f"{self.scheme}://{base}/{SUCCESS}")

    def _exists(self, path: str) -> bool:
        try:
            return self.fs.exists(path)
        except FileNotFoundError:
            return False

    # ------------------------------------------------------------------------ removal

    def clear_dir(self, url: str) -> None:
        """Remove everything under a directory output, its _SUCCESS first (it never looks complete)."""
        base = self.path(url).rstrip("/")
        try:
            self.fs.rm_file(f"{base}/{SUCCESS}")
        except FileNotFoundError:
            pass
        try:
            keys = self.fs.find(base + "/")
        except FileNotFoundError:
            return
        if keys:
            self.fs.rm(keys)

    def remove(self, url: str, kind: str) -> bool:
        """Delete a file output or a whole directory output; False if there was nothing to delete."""
        if kind == "dir":
            base = self.path(url).rstrip("/")
            try:
                existed = bool(self.fs.find(base + "/"))
            except FileNotFoundError:
                existed = False
            self.clear_dir(url)
            return existed
        try:
            self.fs.rm_file(self.path(url))
        except FileNotFoundError:
            return False
        return True

    def open(self, url: str, mode: str = "rb", **kwargs):
        return self.fs.open(self.path(url), mode, **kwargs)


class S3Store(ObjectStore):
    """Amazon S3 and servers that speak its protocol: s3fs to publish and remove, botocore to list.

    Listing runs in the main process on every build, no-ops included, so it uses a plain botocore
    client (half the start-up cost of s3fs with its asyncio stack) with the same settings and the
    same credential chain.
    """

    def __init__(self, scheme: str, options: dict):
        super().__init__(scheme, options)
        self._client = None
        self._client_pid = None

    @property
    def client(self):
        if self._client is None or self._client_pid != os.getpid():
            import botocore.session

            region = self.options.get("client_kwargs", {}).get("region_name")
            self._client = botocore.session.get_session().create_client(
                "s3", endpoint_url=self.options.get("endpoint_url"), region_name=region)
            self._client_pid = os.getpid()
        return self._client

    def _make_fs(self):
        try:
            import s3fs  # noqa: F401  (fsspec would name the package less clearly)
        except ImportError:
            raise StoreUnavailable("s3:// locations need s3fs: pip install 'flow[s3]'") from None
        return super()._make_fs()

    def present(self, prefix_url: str, queries: dict) -> set:
        """One paginated ListObjectsV2 over just the key range the queried names span.

        The listing starts at the smallest queried name and stops past the largest, under the
        longest prefix the names share: 10,000 daily files of one prefix cost 10 requests, and a
        prefix holding years of other objects costs no more than the range asked about.
        """
        try:
            client = self.client
        except ImportError:
            raise StoreUnavailable("s3:// locations need s3fs: pip install 'flow[s3]'") from None
        location = split(prefix_url)
        names = sorted(queries)
        deep = DIR in queries.values()
        prefix = location.key + os.path.commonprefix(names)
        start_after = location.key + names[0][:-1]  # just below the first name: it is included
        stop = location.key + names[-1] + "0"  # '0' follows '/': every key under the last name is before it
        request = {"Bucket": location.bucket, "Prefix": prefix, "MaxKeys": LIST_PAGE}
        if start_after > prefix:
            request["StartAfter"] = start_after
        if not deep:
            request["Delimiter"] = "/"
        keys = []
        skip = len(location.key)
        while True:
            try:
                page = client.list_objects_v2(**request)
            except client.exceptions.NoSuchBucket:  # nothing under a missing bucket is complete
                return set()
            contents = page.get("Contents", [])
            keys.extend(item["Key"][skip:] for item in contents)
            keys.extend(item["Prefix"][skip:] for item in page.get("CommonPrefixes", []))
            last = contents[-1]["Key"] if contents else ""
            if not page.get("IsTruncated") or last >= stop:
                break
            request["ContinuationToken"] = page["NextContinuationToken"]
            request.pop("StartAfter", None)
        return _complete(queries, keys)


def _complete(queries: dict, keys: Iterable[str]) -> set:
    """Which queried names the listed keys (relative to the prefix) make complete."""
    files, dirs, successes = set(), set(), set()
    for key in keys:
        head, slash, rest = key.partition("/")
        if not slash:
            files.add(head)
            continue
        dirs.add(head)
        if rest == SUCCESS:
            successes.add(head)
    done = set()
    for name, kind in queries.items():
        found = files if kind == FILE else successes if kind == DIR else dirs
        if name in found:
            done.add(name)
    return done


class HDFSStore(ObjectStore):
    """HDFS through pyarrow: the URL names the name node, keys are absolute paths, a rename publishes.

    HDFS renames atomically, so a file is uploaded to a hidden sibling and renamed into place,
    after checking that nobody published it meanwhile (HDFS has no create-only upload to lean on).
    """

    def __init__(self, scheme: str, options: dict, namenode: str = ""):
        super().__init__(scheme, options)
        self.namenode = namenode

    def _make_fs(self):
        host, _, port = self.namenode.partition(":")
        try:
            import fsspec

            return fsspec.filesystem("hdfs", host=host or "default", port=int(port or 0), **self.options)
        except ImportError:
            raise StoreUnavailable("hdfs:// locations need pyarrow and Hadoop's libhdfs: "
                                   "pip install 'flow[hdfs]'") from None

    def path(self, url: str) -> str:
        return "/" + split(url).key

    def publish_file(self, local: str, url: str, replace: bool = False) -> bool:
        final = self.path(url)
        head, _, name = final.rpartition("/")
        temp = f"{head}/.{name}.flow-tmp-{os.getpid()}"
        self.fs.put_file(local, temp)
        if replace and self._exists(final):
            self.fs.rm_file(final)
        elif self._exists(final):
            self.fs.rm_file(temp)
            return False
        self.fs.mv(temp, final)
        return True


_STORE_CLASSES = {"s3": S3Store, "hdfs": HDFSStore}


class Stores:
    """The stores one project uses, each made on first use with the project's settings."""

    def __init__(self, settings: "storage_settings.StorageSettings | None" = None):
        self.settings = settings if settings is not None else storage_settings.StorageSettings()
        self._by_scheme: dict = {}

    def for_url(self, url: str) -> ObjectStore:
        """The store a URL lives on."""
        location = split(url)
        scheme = location.scheme
        key = (scheme, location.bucket) if scheme == "hdfs" else scheme  # one HDFS client per name node
        store = self._by_scheme.get(key)
        if store is None:
            if scheme == "hdfs":
                store = HDFSStore(scheme, self.settings.options(scheme), location.bucket)
            else:
                store = _STORE_CLASSES.get(scheme, ObjectStore)(scheme, self.settings.options(scheme))
            self._by_scheme[key] = store
        return store

