#!/usr/bin/env bash
# Run examples/s3/Flowfile end to end against a local S3 server (moto, from `pip install -e '.[s3,test]'`):
# start the server on a free port, put two months of streams into the bucket, build down to the
# Postgres load (FLOW_DATABASE_URL, or flow's embedded server), build again (a no-op), show the results.
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
flow -f examples/s3/Flowfile build toplists_db_2012
flow -f examples/s3/Flowfile build toplists_db_2012 s3://flow-example/artist_streams/2012-06.tsv  # a no-op
(cd examples/s3 && flow db shell -c "SELECT artist, streams FROM top10 WHERE date_from = '2012-06-01' ORDER BY streams DESC")
python - <<'PY'
from flow.runtime.storage.stores import Stores
fs = Stores().for_url("s3://flow-example/").fs
for path in fs.find("flow-example/artist_streams/"):
    print(f"s3://{path}  {fs.size(path)} bytes")
PY
