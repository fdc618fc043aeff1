#!/usr/bin/env bash
# make bench: bccguard against a throwaway Postfix relay on loopback, same
# client (smtp-source, and a Go client for what it cannot send) and same
# upstream (smtp-sink). Installs Postfix when missing (no system Postfix is
# left running) and, whatever happens, stops the throwaway instance.
# Needs root (postfix start). Takes about a minute and a half on 2 cores.
#   BCCGUARD_BENCH_OUT=FILE   also write the table (Markdown) to FILE
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
pfdir_file=$(mktemp)
export BCCGUARD_BENCH_POSTFIX_DIR_FILE="$pfdir_file"
cleanup() {
	# The test stops its Postfix itself; this covers a killed test process.
	if [ -s "$pfdir_file" ]; then
		postfix -c "$(cat "$pfdir_file")" stop >/dev/null 2>&1 || true
	fi
	rm -f "$pfdir_file"
}
trap cleanup EXIT INT TERM
BCCGUARD_BENCH=1 ${GO:-go} test -count=1 -v -timeout 8m -run '^TestBench$' ./tests/bench
