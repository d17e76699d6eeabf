#!/usr/bin/env python3
"""Remote outputs on a local S3 server: cold build, no-op and dry run of N objects, and their requests.

Usage: python bench/s3_bench.py [N ...]        (default: 1000 10000)

For each N: a Flowfile with one rule writing `s3://bench-N/days/{date}.tsv` (the harness's fixed
3-line file, bench/flow_actions.write_fixed) and a target over N days; then, through the `flow`
command, a cold build (-j 2), a no-op build and a dry run, each with the requests the server saw
(counted on the server: tests/s3server.py). Beside them, the way Luigi checks S3 targets: a HEAD
per object (boto3 `head_object`, one client, in-process) over the same N keys. Wall seconds
include process start-up. Needs `pip install -e '.[s3,test]'`.
"""

from __future__ import annotations

import datetime
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(HERE)
FLOW = os.path.join(os.path.dirname(sys.executable), "flow")
FIRST_DAY = datetime.date(1990, 1, 1)

FLOWFILE = """
rule day(date: date):
    output: "s3://{bucket}/days/{{date}}.tsv"
    python: flow_actions.write_fixed

target all: day(d) for d in days({first} .. {last})
"""


def start_server():
    process = subprocess.Popen([sys.executable, "-m", "tests.s3server"], cwd=PROJECT, stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    if not line.startswith("listening on "):
        raise SystemExit("the local S3 server did not start")
    return process, line.split()[-1]


def counts(url: str, reset: bool = False) -> dict:
    request = urllib.request.Request(url + "/_counts" + ("/reset" if reset else ""),
                                     method="POST" if reset else "GET", data=b"" if reset else None)
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def timed(argv, cwd, env, url) -> tuple:
    counts(url, reset=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        tail = result.stdout[-2000:] + result.stderr[-2000:]
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}):\n{tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, counts(url), cpu


def head_loop(url: str, env: dict, bucket: str, keys: list) -> tuple:
    import boto3

    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    client.head_object(Bucket=bucket, Key=keys[0])  # the client's own set-up is not the loop's cost
    counts(url, reset=True)
    started = time.perf_counter()
    cpu_before = time.process_time()
    for key in keys:
        client.head_object(Bucket=bucket, Key=key)
    return time.perf_counter() - started, counts(url), time.process_time() - cpu_before


def describe(found: dict) -> str:
    return ", ".join(f"{count} {kind}" for kind, count in sorted(found.items())) or "none"


def main(sizes) -> int:
    server, url = start_server()
    env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
               FLOW_S3_ENDPOINT_URL=url)
    rows = []
    try:
        for size in sizes:
            bucket = f"bench-{size}"
            project = tempfile.mkdtemp(prefix=f"flow-s3-bench-{size}-")
            last = FIRST_DAY + datetime.timedelta(days=size - 1)
            with open(os.path.join(project, "Flowfile"), "w") as handle:
                handle.write(FLOWFILE.format(bucket=bucket, first=FIRST_DAY, last=last))
            shutil.copy(os.path.join(HERE, "flow_actions.py"), project)
            subprocess.run([sys.executable, "-c", f"import boto3; boto3.client('s3', endpoint_url='{url}', "
                            f"region_name='us-east-1').create_bucket(Bucket='{bucket}')"], env=env, check=True)
            cold = timed([FLOW, "build", "-j", "2", "all"], project, env, url)
            noop = timed([FLOW, "build", "all"], project, env, url)
            dry = timed([FLOW, "build", "--dry-run", "all"], project, env, url)
            keys = [f"days/{FIRST_DAY + datetime.timedelta(days=n)}.tsv" for n in range(size)]
            heads = head_loop(url, env, bucket, keys)
            rows.append((size, cold, noop, dry, heads))
            shutil.rmtree(project)
            print(f"N={size}: " + "; ".join(f"{what} {r[0]:.2f} s wall, {r[2]:.2f} s CPU ({describe(r[1])})"
                                            for what, r in
                  (("cold", cold), ("no-op", noop), ("dry run", dry), ("HEAD loop", heads))), flush=True)
    finally:
        server.kill()
        server.wait()
    print()
    print("| N objects | what | wall s | CPU s (client) | requests |")
    print("|---:|---|---:|---:|---|")
    for size, cold, noop, dry, heads in rows:
        for what, r in (("flow cold build -j 2", cold), ("flow no-op", noop), ("flow --dry-run", dry),
                        ("HEAD per object (Luigi's check)", heads)):
            print(f"| {size:,} | {what} | {r[0]:.2f} | {r[2]:.2f} | {describe(r[1])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main([int(arg) for arg in sys.argv[1:]] or [1000, 10000]))
