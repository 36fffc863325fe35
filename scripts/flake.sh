#!/usr/bin/env sh
# `make flake`: the whole suite five times in a row while a CPU hog keeps one core busy.
# A test that only passes on an idle machine fails here; any failure fails the run.
set -eu
BIN=${1:-.venv/bin}
shift || true  # the rest: the test command's own arguments (the Makefile's TEST_ARGS)
"$BIN/python" -c 'while True: pass' &
HOG=$!
trap 'kill $HOG 2>/dev/null' EXIT INT TERM
for run in 1 2 3 4 5; do
    echo "== flake run $run of 5 (CPU hog pid $HOG) =="
    "$BIN/python" -m pytest "$@"
done
