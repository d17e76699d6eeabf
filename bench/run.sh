#!/usr/bin/env bash
# flow beside make, Luigi and Snakemake on the shared harness's workload, in one command:
#
#   bench/run.sh [OUT]        (default OUT=/tmp/flow-bench-<UTC time>)
#
# 1. the peers' venvs (setup_venvs.sh; pip-installs the pinned luigi/snakemake) in $BENCH_VENVS
# 2. bench/check_workload.py: the generated Flowfiles expand to exactly workload.json's tasks
# 3. run_peers.sh per tool and size: SIZES (default "1000 10000 100000"), REPS (default 3) below
#    100,000, REPS_BIG (default 1) from it; TOOLS (default "flow make luigi snakemake") and
#    BIG_TOOLS (default "flow make": luigi and snakemake stop at 10k, see the shared peers.md)
# 4. summarize.py -> OUT/results/peers.md; bench/startup.py -> startup.md; bench/parallel.py -> parallel.md
#
# The shared harness (SHARED, default /work/shared/bench) stays read-only: everything goes under OUT.
# Its knobs pass through: TIMEOUT (300), MAX_REPEAT_S (120), PHASES. FLOW_BIN picks the flow binary.
# Takes ~15-20 min on a 2-core VM, most of it Snakemake at 10k (killed at TIMEOUT) and Luigi at 10k.
set -u
PROJECT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-/work/shared/bench}
OUT=${1:-/tmp/flow-bench-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export BENCH_WORK="$OUT/work" BENCH_RESULTS="$OUT/results"
export BENCH_VENVS=${BENCH_VENVS:-$OUT/.venvs}
SIZES=${SIZES:-"1000 10000 100000"}
TOOLS=${TOOLS:-"flow make luigi snakemake"}
BIG_TOOLS=${BIG_TOOLS:-"flow make"}
mkdir -p "$BENCH_RESULTS"
LOG="$OUT/run.log"
say() { echo "$@" | tee -a "$LOG"; }

say "# bench/run.sh $(date -u +%FT%TZ) on $(hostname), nproc $(nproc), $(python3 --version 2>&1), load $(cut -d' ' -f1-3 /proc/loadavg)"
say "# OUT=$OUT BENCH_VENVS=$BENCH_VENVS SIZES=\"$SIZES\" TOOLS=\"$TOOLS\" BIG_TOOLS=\"$BIG_TOOLS\""

case " $TOOLS " in *" luigi "*|*" snakemake "*)
    "$SHARED/setup_venvs.sh" 2>&1 | grep -v "^WARNING: Location" | tee -a "$LOG" ;;
esac

python3 "$PROJECT/bench/check_workload.py" $SIZES 2>&1 | tee -a "$LOG"
[ "${PIPESTATUS[0]}" = 0 ] || { say "check_workload.py failed: not measuring a different workload"; exit 1; }

for n in $SIZES; do
    reps=${REPS:-3}; tools=$TOOLS
    if [ "$n" -ge 100000 ]; then reps=${REPS_BIG:-1}; tools=$BIG_TOOLS; fi
    for tool in $tools; do
        if [ "$tool" = flow ]; then
            ADAPTER="$PROJECT/bench/flow.sh" "$SHARED/run_peers.sh" flow "$n" "$reps" 2>&1 | tee -a "$LOG"
        else
            "$SHARED/run_peers.sh" "$tool" "$n" "$reps" 2>&1 | tee -a "$LOG"
        fi
    done
done

python3 "$SHARED/summarize.py" "$BENCH_RESULTS/peers.md" | tee -a "$LOG"
python3 "$PROJECT/bench/startup.py" > "$BENCH_RESULTS/startup.md" 2>&1
python3 "$PROJECT/bench/parallel.py" > "$BENCH_RESULTS/parallel.md" 2>&1
say ""
sed -n '/^| tool | N/,/^$/p' "$BENCH_RESULTS/peers.md" | tee -a "$LOG"
sed -n '/^| tool | sizes/,/^$/p' "$BENCH_RESULTS/peers.md" | tee -a "$LOG"
cat "$BENCH_RESULTS/startup.md" "$BENCH_RESULTS/parallel.md" | tee -a "$LOG"
say "# done $(date -u +%FT%TZ); report: $BENCH_RESULTS/peers.md, startup.md, parallel.md; log: $LOG"
