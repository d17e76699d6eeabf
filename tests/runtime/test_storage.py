"""The object-store layer: URLs, settings, bulk listing, create-only publishing, removal (S3 on the local server)."""

import os

import pytest
from flow.runtime.storage import urls
from flow.runtime.storage.settings import StorageSettings
from flow.runtime.storage.stores import ANY_DIR, DIR, FILE, ObjectStore, Stores, StoreUnavailable

# ---------------------------------------------------------------------------- URLs


def test_split_and_parent():
    location = urls.split("s3://bucket/streams/2012-06-01.tsv")
    assert location == ("s3", "bucket", "streams/2012-06-01.tsv")
    assert location.parent == "s3://bucket/streams/"
    assert location.name == "2012-06-01.tsv"
    assert urls.split("s3://bucket/top").parent == "s3://bucket/"


def test_remote_or_local():
    assert urls.is_remote("gs://b/x") and urls.is_remote("hdfs://namenode:8020/x")
    assert not urls.is_remote("data/streams/2012-06-01.tsv")
    assert not urls.is_remote("/abs/path")
    with pytest.raises(ValueError, match="scheme flow cannot store to"):
        urls.split("ftp://host/x")


def test_spark_urls():
    assert urls.spark_url("s3://bucket/counts/2012-06") == "s3a://bucket/counts/2012-06"
    assert urls.spark_url("gs://bucket/x") == "gs://bucket/x"
    assert urls.spark_url("hdfs://nn:8020/x") == "hdfs://nn:8020/x"
    assert urls.spark_url("data/x.tsv") == "data/x.tsv"


# ---------------------------------------------------------------------------- settings


def test_settings_flowfile_over_environment():
    environ = {"FLOW_S3_ENDPOINT_URL": "http://127.0.0.1:9", "FLOW_S3_REGION": "eu-west-1"}
    assert StorageSettings(environ=environ).options("s3") == {
        "endpoint_url": "http://127.0.0.1:9", "client_kwargs": {"region_name": "eu-west-1"}}
    flowfile = {"s3": {"endpoint-url": "http://store:9000"}, "gcs": {"project": "p"}}
    settings = StorageSettings(flowfile, environ)
    assert settings.options("s3")["endpoint_url"] == "http://store:9000"
    assert settings.options("gs") == {"project": "p"}


def test_aws_endpoint_variable_is_honoured():
    assert StorageSettings(environ={"AWS_ENDPOINT_URL": "http://x:1"}).options("s3") == {"endpoint_url": "http://x:1"}


def test_missing_extra_is_one_line_naming_it(monkeypatch):
    import fsspec

    def refuse(*args, **kwargs):
        raise ImportError("No module named 'gcsfs'")

    monkeypatch.setattr(fsspec, "filesystem", refuse)
    store = Stores().for_url("gs://bucket/x")
    with pytest.raises(StoreUnavailable) as caught:
        store.fs.ls("bucket")
    assert str(caught.value) == "gs:// locations need gcsfs: pip install 'flow[gcs]'"


# ---------------------------------------------------------------------------- a generic store (fsspec memory)


class MemoryStore(ObjectStore):
    """The generic store on fsspec's in-memory filesystem, as GCS and others use it."""

    def _make_fs(self):
        import fsspec

        return fsspec.filesystem("memory")

    def path(self, url):
        return "/" + url.partition("://")[2]


@pytest.fixture
def memory_store():
    store = MemoryStore("gs", {})
    store.fs.rm("/", recursive=True) if store.fs.exists("/mem-bucket") else None
    yield store
    if store.fs.exists("/mem-bucket"):
        store.fs.rm("/mem-bucket", recursive=True)


def test_generic_store_lists_files_and_dirs(memory_store, tmp_path):
    fs = memory_store.fs
    fs.pipe("/mem-bucket/out/a.tsv", b"a")
    fs.pipe("/mem-bucket/out/d1/part-0", b"x")
    fs.pipe("/mem-bucket/out/d1/_SUCCESS", b"")
    fs.pipe("/mem-bucket/out/d2/part-0", b"x")  # no _SUCCESS: an interrupted write
    queries = {"a.tsv": FILE, "b.tsv": FILE, "d1": DIR, "d2": DIR, "d3": DIR}
    assert memory_store.present("gs://mem-bucket/out/", queries) == {"a.tsv", "d1"}
    assert memory_store.present("gs://mem-bucket/out/", {"d2": ANY_DIR}) == {"d2"}
    assert memory_store.present("gs://mem-bucket/nothing/", {"x": FILE}) == set()


def test_generic_store_publishes_create_only(memory_store, tmp_path):
    local = tmp_path / "x.tsv"
    local.write_text("first")
    assert memory_store.publish_file(str(local), "gs://mem-bucket/x.tsv")
    local.write_text("second")
    assert not memory_store.publish_file(str(local), "gs://mem-bucket/x.tsv")
    assert memory_store.fs.cat("/mem-bucket/x.tsv") == b"first"
    assert memory_store.publish_file(str(local), "gs://mem-bucket/x.tsv", replace=True)
    assert memory_store.fs.cat("/mem-bucket/x.tsv") == b"second"


# ---------------------------------------------------------------------------- S3 on the local server


@pytest.fixture
def s3(s3_server, monkeypatch):
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    return Stores().for_url("s3://any/")


def _put(s3_server, bucket, key, body=b"x"):
    s3_server.client().put_object(Bucket=bucket, Key=key, Body=body)


def test_s3_present_is_one_list_for_a_prefix(s3, s3_server, s3_bucket):
    for day in range(1, 31):
        _put(s3_server, s3_bucket, f"streams/2012-06-{day:02d}.tsv")
    _put(s3_server, s3_bucket, "top/2012-06/part-0")
    _put(s3_server, s3_bucket, "top/2012-06/_SUCCESS", b"")
    _put(s3_server, s3_bucket, "top/2012-07/part-0")
    s3_server.reset_counts()
    queries = {f"2012-06-{day:02d}.tsv": FILE for day in range(1, 32)}
    found = s3.present(f"s3://{s3_bucket}/streams/", queries)
    assert found == {f"2012-06-{day:02d}.tsv" for day in range(1, 31)}
    assert s3.present(f"s3://{s3_bucket}/top/", {"2012-06": DIR, "2012-07": DIR, "2012-08": DIR}) == {"2012-06"}
    assert s3_server.counts() == {"LIST": 2}


def test_s3_present_pages_through_a_range(s3, s3_server, s3_bucket):
    client = s3_server.client()
    for index in range(2500):
        client.put_object(Bucket=s3_bucket, Key=f"many/{index:05d}.tsv", Body=b"")
    s3_server.reset_counts()
    queries = {f"{index:05d}.tsv": FILE for index in range(0, 2600, 2)}
    found = s3.present(f"s3://{s3_bucket}/many/", queries)
    assert found == {f"{index:05d}.tsv" for index in range(0, 2500, 2)}
    assert s3_server.counts() == {"LIST": 3}  # 2,500 keys, 1,000 a page
    s3_server.reset_counts()
    assert s3.present(f"s3://{s3_bucket}/many/", {"01200.tsv": FILE, "01201.tsv": FILE}) == {"01200.tsv", "01201.tsv"}
    assert s3_server.counts() == {"LIST": 1}  # just the range asked about


def test_s3_publish_is_create_only(s3, s3_server, s3_bucket, tmp_path):
    local = tmp_path / "x.tsv"
    local.write_text("first")
    url = f"s3://{s3_bucket}/out/x.tsv"
    assert s3.publish_file(str(local), url)
    local.write_text("second")
    assert not s3.publish_file(str(local), url)
    body = s3_server.client().get_object(Bucket=s3_bucket, Key="out/x.tsv")["Body"].read()
    assert body == b"first"
    assert s3.publish_file(str(local), url, replace=True)
    assert s3_server.client().get_object(Bucket=s3_bucket, Key="out/x.tsv")["Body"].read() == b"second"


def test_s3_publish_dir_removes_stale_parts_and_writes_success_last(s3, s3_server, s3_bucket, tmp_path):
    _put(s3_server, s3_bucket, "counts/2012-06/part-stale")  # a failed attempt's part, no _SUCCESS
    local = tmp_path / "out"
    (local / "sub").mkdir(parents=True)
    (local / "part-0").write_text("a")
    (local / "sub" / "part-1").write_text("b")
    assert s3.publish_dir(str(local), f"s3://{s3_bucket}/counts/2012-06")
    listed = s3_server.client().list_objects_v2(Bucket=s3_bucket, Prefix="counts/")["Contents"]
    assert sorted(o["Key"] for o in listed) == ["counts/2012-06/_SUCCESS", "counts/2012-06/part-0",
                                                "counts/2012-06/sub/part-1"]
    assert not s3.publish_dir(str(local), f"s3://{s3_bucket}/counts/2012-06")  # published already
    assert s3.remove(f"s3://{s3_bucket}/counts/2012-06", "dir")
    assert "Contents" not in s3_server.client().list_objects_v2(Bucket=s3_bucket, Prefix="counts/")
    assert not s3.remove(f"s3://{s3_bucket}/counts/2012-06", "dir")


def test_s3_missing_bucket_means_incomplete(s3):
    assert s3.present("s3://no-such-bucket-here/x/", {"a": FILE}) == set()


# ---------------------------------------------------------------------------- Spark


def test_spark_actions_get_s3a_inputs_and_a_local_output():
    from flow.runtime.actions.base import ActionContext
    from flow.runtime.actions.spark import expand_args, for_spark

    ctx = ActionContext("t(2012-06)", "t", {}, ["s3://logs/streams/2012-06-01.tsv", "data/local.tsv",
                                                "gs://b/x", "hdfs://nn:8020/y"], ".flow/tmp/.out.flow-tmp-1-0",
                        "t(2012-06)", "/project")
    spark_ctx = for_spark(ctx)
    assert spark_ctx.inputs == ["s3a://logs/streams/2012-06-01.tsv", "data/local.tsv", "gs://b/x", "hdfs://nn:8020/y"]
    assert spark_ctx.output == ".flow/tmp/.out.flow-tmp-1-0"
    assert expand_args(None, spark_ctx) == [".flow/tmp/.out.flow-tmp-1-0", *spark_ctx.inputs]
    assert ctx.inputs[0] == "s3://logs/streams/2012-06-01.tsv"  # the task's own context is unchanged


# ---------------------------------------------------------------------------- flow.runtime.io


def test_open_input_reads_local_and_remote_alike(s3, s3_server, s3_bucket, tmp_path):
    from flow.runtime.io import input_files, open_input

    _put(s3_server, s3_bucket, "in/day.tsv", "café\t1\n".encode())
    _put(s3_server, s3_bucket, "in/dir/part-0", b"a")
    _put(s3_server, s3_bucket, "in/dir/part-1", b"b")
    _put(s3_server, s3_bucket, "in/dir/_SUCCESS", b"")
    local = tmp_path / "day.tsv"
    local.write_text("café\t1\n", encoding="utf-8")
    for location in (str(local), f"s3://{s3_bucket}/in/day.tsv"):
        with open_input(location) as lines:
            assert lines.read() == "café\t1\n"
        with open_input(location, "rb") as raw:
            assert raw.read() == "café\t1\n".encode()
    assert input_files(f"s3://{s3_bucket}/in/dir") == [f"s3://{s3_bucket}/in/dir/part-0", f"s3://{s3_bucket}/in/dir/part-1"]
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "part-0").write_text("a")
    (tmp_path / "d" / "_SUCCESS").write_text("")
    assert input_files(str(tmp_path / "d")) == [str(tmp_path / "d" / "part-0")]


def test_flowfile_settings_are_exported_for_actions():
    settings = StorageSettings({"s3": {"endpoint-url": "http://store:9000", "region": "eu-west-1"},
                                "gcs": {"project": "p"}}, environ={})
    assert settings.environment() == {"FLOW_S3_ENDPOINT_URL": "http://store:9000", "FLOW_S3_REGION": "eu-west-1",
                                      "FLOW_GCS_PROJECT": "p"}


# ---------------------------------------------------------------------------- HDFS (no cluster here)


def test_hdfs_urls_name_the_namenode_and_an_absolute_path():
    stores = Stores()
    store = stores.for_url("hdfs://namenode:8020/warehouse/counts/2012-06.tsv")
    assert store.namenode == "namenode:8020"
    assert store.path("hdfs://namenode:8020/warehouse/counts/2012-06.tsv") == "/warehouse/counts/2012-06.tsv"
    assert stores.for_url("hdfs://other:8020/x") is not store  # one client per name node


def test_hdfs_publishes_by_renaming_a_hidden_sibling(tmp_path):
    """HDFSStore's publish on fsspec's local filesystem standing in for HDFS (rename is atomic on both)."""
    from flow.runtime.storage.stores import HDFSStore

    class LocalHDFS(HDFSStore):
        def _make_fs(self):
            import fsspec

            return fsspec.filesystem("file")

        def path(self, url):
            return str(tmp_path / "hdfs") + super().path(url)

    store = LocalHDFS("hdfs", {}, "namenode:8020")
    local = tmp_path / "x.tsv"
    local.write_text("first")
    (tmp_path / "hdfs" / "out").mkdir(parents=True)
    assert store.publish_file(str(local), "hdfs://namenode:8020/out/x.tsv")
    local.write_text("second")
    assert not store.publish_file(str(local), "hdfs://namenode:8020/out/x.tsv")
    assert (tmp_path / "hdfs" / "out" / "x.tsv").read_text() == "first"
    assert sorted(os.listdir(tmp_path / "hdfs" / "out")) == ["x.tsv"]  # no hidden sibling left
    assert store.publish_file(str(local), "hdfs://namenode:8020/out/x.tsv", replace=True)
    assert (tmp_path / "hdfs" / "out" / "x.tsv").read_text() == "second"


def test_hdfs_without_pyarrow_says_what_to_install(monkeypatch):
    import fsspec

    def refuse(*args, **kwargs):
        raise ImportError("pyarrow and local java libraries required for HDFS")

    monkeypatch.setattr(fsspec, "filesystem", refuse)
    message = r"hdfs:// locations need pyarrow and Hadoop's libhdfs: pip install 'flow\[hdfs\]'"
    with pytest.raises(StoreUnavailable, match=message):
        Stores().for_url("hdfs://nn:8020/x").fs.ls("/")
