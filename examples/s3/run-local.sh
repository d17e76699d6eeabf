#!/usr/bin/env bash
# Run examples/s3/Flowfile end to end against a local S3 server (moto, from `pip install -e '.[s3,test]'`):
# start the server on a free port, put two months of streams into the bucket, build, list the bucket.
# With FLOW_DATABASE_URL set, the top 10s are loaded into Postgres too.
set -euo pipefail
cd "$(dirname "$0")/../.."

log=$(mktemp)
python -m tests.s3server > "$log" &
server=$!
trap 'kill $server 2>/dev/null; rm -f "$log"' EXIT
until grep -q '^listening on ' "$log"; do
    kill -0 $server 2>/dev/null || { echo "the local S3 server did not start" >&2; exit 1; }
    sleep 0.1
done
export FLOW_S3_ENDPOINT_URL=$(sed -n 's/^listening on //p' "$log")
# The server takes any credentials; these only satisfy the AWS credential chain.
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION=us-east-1

python examples/s3/put_streams.py flow-example 2012-06-01 2012-07-31
if [ -n "${FLOW_DATABASE_URL:-}" ]; then target=toplists_db_2012; else target=toplists_2012; fi
flow -f examples/s3/Flowfile build "$target"
flow -f examples/s3/Flowfile build "$target"      # a no-op: one listing per prefix
flow -f examples/s3/Flowfile status top_artists_2012-06.tsv | head -4
python - <<'PY'
from flow.runtime.storage.stores import Stores
fs = Stores().for_url("s3://flow-example/").fs
for path in fs.find("flow-example/artist_streams/"):
    print(f"s3://{path}  {fs.size(path)} bytes")
PY
