#!/usr/bin/env bash
# One command for the scheduling benchmark (issue 5): installs GNU time (apt-get) and py-spy (pip,
# into .venv; a one-off, not a project dependency) if missing, then runs bench/scheduling.py on
# SQLite and PostgreSQL and writes its section of bench/RESULTS.md. Extra arguments go to
# scheduling.py, e.g. --parts 1,3 --databases sqlite.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/time ]; then
    apt-get install -y time || { apt-get update && apt-get install -y time; }
fi
if [ ! -x .venv/bin/py-spy ] && ! command -v py-spy >/dev/null; then
    .venv/bin/pip install py-spy
fi
exec .venv/bin/python -m bench.scheduling "$@"
