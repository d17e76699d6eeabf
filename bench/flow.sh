# Adapter for flow, for the shared harness (from its tools/flow.sh.example). Run from the project root:
#   ADAPTER=bench/flow.sh BENCH_WORK=/tmp/fb/work BENCH_RESULTS=/tmp/fb/results \
#       /work/shared/bench/run_peers.sh flow 10000 3
# run_peers.sh sources this with BENCH (the harness folder), WORKDIR (this size's work folder) and
# N (target task count) set. bench/run.sh does all sizes and the peers in one go.
PROJECT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)   # the adapter lives in PROJECT/bench/
# The installed console script (pip install -e PROJECT), taken from the scripts folder of the python3
# that has flow installed rather than from PATH: under pyenv, PATH's `flow` is a bash shim that adds
# ~70 ms to every run (the peers run their venv's scripts directly). FLOW_BIN=/path/to/flow overrides.
if [ -z "${FLOW_BIN:-}" ]; then
    FLOW_BIN=$(python3 -c 'import os, sysconfig; p = os.path.join(sysconfig.get_path("scripts"), "flow"); print(p if os.access(p, os.X_OK) else "")' 2>/dev/null)
    FLOW_BIN=${FLOW_BIN:-$(command -v flow || echo flow)}
fi
tool_version() { "$FLOW_BIN" --version; }
# workload.json -> Flowfile (three rules, one range, target all), and the action module beside it:
# flow puts the Flowfile's directory on sys.path, so `python: flow_actions.write_fixed` imports it.
tool_gen()     { python3 "$BENCH/gen_workload.py" manifest "$N" "$WORKDIR" >/dev/null &&
                 python3 "$PROJECT/bench/workload_to_flowfile.py" "$WORKDIR/workload.json" > "$WORKDIR/Flowfile" &&
                 cp "$PROJECT/bench/flow_actions.py" "$WORKDIR/flow_actions.py"; }
# Outputs and flow's state (.flow/: run history, locks, task logs), so that "cold" really is cold.
tool_clean()   { rm -rf "$WORKDIR/data" "$WORKDIR/.flow"; }
# Serial like the peers (-j1: one worker process runs the actions); default output (progress + summary).
BUILD_CMD=("$FLOW_BIN" build -j1)
DRY_CMD=("$FLOW_BIN" build -j1 --dry-run)
PHASE_NOTE_dry="flow build -j1 --dry-run from the cold state (loads the Flowfile, expands the full task graph, checks every output, prints the plan)"
