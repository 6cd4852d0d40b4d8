#!/bin/sh
# CUDA compiler launcher (CMake CUDA_COMPILER_LAUNCHER): runs the compiler command given after
# LOGDIR, keeps the `ptxas -v` lines (registers, shared memory, spills per kernel) in
# LOGDIR/<object>.txt and passes every other message through to stderr.
logdir="$1"
shift
mkdir -p "$logdir"
out=""
prev=""
for a in "$@"; do
  [ "$prev" = "-o" ] && out="$a"
  prev="$a"
done
log="$logdir/$(basename "${out:-nvcc}").txt"
"$@" 2>"$log.all"
rc=$?
grep -E "ptxas info|bytes stack frame" "$log.all" >"$log" || true
grep -vE "ptxas info|bytes stack frame" "$log.all" >&2 || true
rm -f "$log.all"
[ -s "$log" ] || rm -f "$log"
exit $rc
