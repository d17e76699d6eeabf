"""Store settings that are not secrets: endpoint, region, project, from the Flowfile or the environment.

Credentials never pass through flow: each store's own chain finds them (AWS variables, profiles and
instance roles for S3; Google application default credentials for GCS), so nothing flow prints or
stores can contain a key.
"""

from __future__ import annotations

import os
from typing import Mapping

# Flowfile `storage:` keys per scheme -> the fsspec option they set.
KNOWN = {
    "s3": {"endpoint-url": "endpoint_url", "region": "region"},
    "gs": {"endpoint-url": "endpoint_url", "project": "project"},
    "hdfs": {"user": "user"},
}
SCHEME_ALIASES = {"gcs": "gs"}

# Environment variables flow reads, per scheme and option (the first one set wins). The stores'
# own variables (AWS_ENDPOINT_URL, AWS_REGION, STORAGE_EMULATOR_HOST, ...) keep working too.
ENVIRONMENT = {
    "s3": {"endpoint_url": ("FLOW_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
           "region": ("FLOW_S3_REGION",)},
    "gs": {"endpoint_url": ("FLOW_GCS_ENDPOINT_URL",), "project": ("FLOW_GCS_PROJECT",)},
    "hdfs": {"user": ("FLOW_HDFS_USER",)},
}


class StorageSettings:
    """Per scheme, the options flow passes to the store: the Flowfile's `storage:` block over the environment."""

    def __init__(self, flowfile: Mapping | None = None, environ: Mapping | None = None):
        self.flowfile = {SCHEME_ALIASES.get(k, k): dict(v) for k, v in (flowfile or {}).items()}
        self.environ = os.environ if environ is None else environ

    def values(self, scheme: str) -> dict:
        """The settings of one scheme by their fsspec names, Flowfile first, then the environment."""
        scheme = SCHEME_ALIASES.get(scheme, scheme)
        found = {}
        for option, names in ENVIRONMENT.get(scheme, {}).items():
            for name in names:
                if self.environ.get(name):
                    found[option] = self.environ[name]
                    break
        for key, value in self.flowfile.get(scheme, {}).items():
            found[KNOWN[scheme][key]] = value
        return found

    def environment(self) -> dict:
        """The Flowfile's settings as flow's variables (FLOW_S3_ENDPOINT_URL=...), for actions and their children.

        Python actions open inputs with `flow.runtime.io` and Spark apps run in other processes;
        both read the environment, so the build exports what the Flowfile says there.
        """
        exported = {}
        for scheme, values in self.flowfile.items():
            for key, value in values.items():
                option = KNOWN[scheme][key]
                exported[ENVIRONMENT[scheme][option][0]] = value
        return exported

    def options(self, scheme: str) -> dict:
        """Keyword arguments for the scheme's fsspec filesystem."""
        values = self.values(scheme)
        scheme = SCHEME_ALIASES.get(scheme, scheme)
        if scheme == "s3":
            options: dict = {}
            if "endpoint_url" in values:
                options["endpoint_url"] = values["endpoint_url"]
            if "region" in values:
                options["client_kwargs"] = {"region_name": values["region"]}
            return options
        return values
