"""Put fake daily stream logs into the example's bucket, as the service that records plays would.

    python examples/s3/put_streams.py [BUCKET] [FIRST_DAY] [LAST_DAY]

The bucket is made if it does not exist. The days' files are the same every time (seeded by date),
and the store is reached with flow's settings (FLOW_S3_ENDPOINT_URL) and the usual AWS credentials.
"""

from __future__ import annotations

import datetime
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from flow.runtime.storage.stores import Stores  # noqa: E402

from examples.top_artists import fake_streams  # noqa: E402


def main(argv) -> int:
    bucket = argv[0] if argv else "flow-example"
    first = datetime.date.fromisoformat(argv[1] if len(argv) > 1 else "2012-06-01")
    last = datetime.date.fromisoformat(argv[2] if len(argv) > 2 else "2012-07-31")
    store = Stores().for_url(f"s3://{bucket}/")
    if not store.fs.exists(bucket):
        store.fs.mkdir(bucket)
    days = [first + datetime.timedelta(days=n) for n in range((last - first).days + 1)]
    with tempfile.TemporaryDirectory() as scratch:
        local, remote = [], []
        for day in days:
            path = os.path.join(scratch, f"{day}.tsv")
            fake_streams(day, path)
            local.append(path)
            remote.append(f"{bucket}/streams/{day}.tsv")
        store.fs.put(local, remote)
    print(f"put {len(days)} days of streams under s3://{bucket}/streams/")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
