#!/usr/bin/env bash
# One command for the webhook benchmark: installs wrk and GNU time if missing, then runs
# bench/run.py (SQLite and PostgreSQL) and writes bench/RESULTS.md. Extra arguments go to run.py.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v wrk >/dev/null || missing+=(wrk)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get install -y "${missing[@]}" || { apt-get update && apt-get install -y "${missing[@]}"; }
fi
exec .venv/bin/python -m bench.run "$@"
