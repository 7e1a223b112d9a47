#!/usr/bin/env bash
# `make demo`: the main job on embedded defaults, one step after another (docs/outcomes.md).
#
#   prepare → apply → materialize → train v1 → serve and replay Sep-Nov → skew check → monitor
#   → retrain → roll the challenger out in shadow → serve and replay December (both versions
#   score it) → evaluate: promote or roll back → summary table
#
# Each step is a function named step_<name>, run in the order of STEPS and announced as it
# starts; extend the demo by adding a function and its name to STEPS. The replay step starts
# `loopline serve` in the background (ingest runs in it: no Redis), replays with --max and stops
# the server with SIGTERM; a server this script started is stopped on any exit.
#
# Environment: DEMO_STEPS (a subset, e.g. "replay skew" on a prepared state), BIN (.venv/bin),
# MODEL (flight-delay), REPLAY_FROM / SHADOW_FROM / REPLAY_TO (2013-09-01 / 2013-12-01 /
# 2013-12-31: the live period, its last month replayed with the challenger in shadow), DEMO_OUT
# (each step's JSON, <home>/demo), DEMO_HTTP_PORT / DEMO_GRPC_PORT (3000 / 8081), and any
# LOOPLINE_* setting.
set -euo pipefail

BIN=${BIN:-.venv/bin}
MODEL=${MODEL:-flight-delay}
REPLAY_FROM=${REPLAY_FROM:-2013-09-01}
REPLAY_TO=${REPLAY_TO:-2013-12-31}
SHADOW_FROM=${SHADOW_FROM:-2013-12-01}
DEMO_OUT=${DEMO_OUT:-${LOOPLINE_HOME:-.loopline}/demo}
HTTP_PORT=${DEMO_HTTP_PORT:-3000}
GRPC_PORT=${DEMO_GRPC_PORT:-8081}
read -ra STEPS <<<"${DEMO_STEPS:-prepare apply materialize train replay skew monitor retrain rollout shadow evaluate summary}"
SERVER_PID=

loopline() { "$BIN/loopline" "$@"; }

step_prepare() { loopline data prepare; }
step_apply() { loopline features apply; }
step_materialize() { loopline features materialize; }

step_train() {
    loopline train --model "$MODEL"
    loopline models show "$MODEL" --version champion --json | head -n 40
}

start_server() {
    # The server answers POST /events once its ingest has applied them, so the replay serves a
    # slice's requests after the slice's events (LOOPLINE_EVENTS_ANSWER_APPLIED).
    LOOPLINE_EVENTS_ANSWER_APPLIED=true LOOPLINE_MODEL_NAME="$MODEL" \
        "$BIN/loopline" serve --port "$HTTP_PORT" --grpc-port "$GRPC_PORT" &
    SERVER_PID=$!
    "$BIN/python" - "$HTTP_PORT" "$SERVER_PID" <<'EOF'
import os, sys, time
import httpx
port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 180
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("loopline serve exited before it was ready")
    try:
        if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status_code == 200:
            sys.exit(0)
    except httpx.TransportError:
        pass
    time.sleep(0.2)
sys.exit(f"loopline serve not ready on port {port} in 180 s")
EOF
    echo "loopline serve ready on port $HTTP_PORT (pid $SERVER_PID)"
}

stop_server() {
    [[ -n $SERVER_PID ]] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    local status=0
    wait "$SERVER_PID" || status=$?
    echo "loopline serve stopped (exit status $status)"
    SERVER_PID=
    return "$status"
}
trap stop_server EXIT

replay_span() {
    # $1 from, $2 to (inclusive), $3 the JSON summary's name under DEMO_OUT
    start_server
    mkdir -p "$DEMO_OUT"
    LOOPLINE_REPLAY_URL="http://127.0.0.1:$HTTP_PORT" \
        loopline replay --from "$1" --to "$2" --max --model "$MODEL" --json >"$DEMO_OUT/$3.json"
    stop_server
    echo "replayed $1 → $2: $(head -c 300 "$DEMO_OUT/$3.json")…"
}

day_before() { "$BIN/python" -c "import datetime,sys; print(datetime.date.fromisoformat(sys.argv[1]) - datetime.timedelta(days=1))" "$1"; }

step_replay() { replay_span "$REPLAY_FROM" "$(day_before "$SHADOW_FROM")" replay; }

step_skew() { loopline skew --sample 1000 --model "$MODEL"; }

# The loop: each verb prints its decision; its JSON is kept for the summary.
loop_step() {
    local name=$1
    shift
    mkdir -p "$DEMO_OUT"
    loopline "$@" --json >"$DEMO_OUT/$name.json"
    "$BIN/python" -c "import json,sys; d=json.load(open(sys.argv[1])); d=d.get('decision', d); print(d.get('outcome', d.get('action')), *(d.get('reasons') or []), sep='\n  ')" "$DEMO_OUT/$name.json"
}

step_monitor() { loop_step monitor monitor --model "$MODEL"; }
step_retrain() { loop_step retrain retrain --model "$MODEL"; }
has_challenger() { loopline models show "$MODEL" --version challenger --json >/dev/null 2>&1; }

# A challenger the gate held back is not rolled out: December is then served by the champion
# alone, and the summary shows the gate's reasons.
step_rollout() {
    if has_challenger; then
        loop_step rollout rollout --model "$MODEL" --mode shadow
    else
        echo "no challenger: the gate held the retrained version back (reasons above); no rollout"
    fi
}
step_shadow() { replay_span "$SHADOW_FROM" "$REPLAY_TO" replay-shadow; }
step_evaluate() {
    if has_challenger; then
        loop_step evaluate rollout --model "$MODEL" --evaluate
    else
        echo "no challenger in rollout: nothing to evaluate"
    fi
}
step_summary() { "$BIN/python" scripts/demo_summary.py "$DEMO_OUT" "${LOOPLINE_HOME:-.loopline}/registry" "$MODEL"; }

for name in "${STEPS[@]}"; do
    started=$SECONDS
    printf '\n==> demo step: %s\n' "$name"
    "step_$name"
    printf '==> %s done in %d s\n' "$name" $((SECONDS - started))
done
