#!/usr/bin/env bash
# System packages Loopline's tests and embedded defaults use: redis-server (integration tests
# start their own on a free 127.0.0.1 port); prometheus and prometheus-pushgateway (the monitor's
# gauges are pushed to a real Pushgateway and read back from a real Prometheus scrape) and
# chromium (the monitor's HTML report is opened headless), plus any commands named as arguments
# (`make bench` asks for wrk). Each command is also its Debian package's name. Installed from Debian when missing and we are root; otherwise say what is
# missing and carry on.
set -euo pipefail

missing=()
for command in redis-server prometheus prometheus-pushgateway chromium "$@"; do
    command -v "$command" >/dev/null || missing+=("$command")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The packages start system-wide servers; Loopline never uses them, tests start their own.
    if command -v service >/dev/null; then
        for server in redis-server prometheus prometheus-pushgateway; do
            service "$server" stop >/dev/null 2>&1 || true
        done
    fi
else
    echo "warning: missing ${missing[*]}; install it (e.g. apt-get install ${missing[*]})" >&2
fi
