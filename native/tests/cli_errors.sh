#!/bin/sh
# CLI contract: usage errors exit 2, load errors print one "error: ..." line and exit 1.
bin="$1"
fail=0
"$bin" --help >/dev/null || { echo "--help failed"; fail=1; }
"$bin" frobnicate >/dev/null 2>&1; [ $? -eq 2 ] || { echo "unknown command should exit 2"; fail=1; }
"$bin" logits >/dev/null 2>&1; [ $? -eq 2 ] || { echo "missing --model should exit 2"; fail=1; }
out=$("$bin" inspect --model /nonexistent-longtail-dir 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] || { echo "missing model should exit 1 (got $rc)"; fail=1; }
case "$out" in "error: "*config.json*) ;; *) echo "bad error line: $out"; fail=1 ;; esac
[ $(printf '%s\n' "$out" | wc -l) -eq 1 ] || { echo "error is not one line"; fail=1; }
exit $fail
