#!/bin/bash
# The whole GPU suite in one command, from a carry folder (tests/gpu/carry.sh) or a build tree:
#
#   tests/gpu/run-suite.sh DIR [--ranks "2 4"] [--sanitize memcheck|synccheck|racecheck|initcheck]
#                              [--out LOGDIR] [--filter GLOB]
#
# Runs every C GPU test program (tests/gpu/test_*, Criterion, --verbose), the Python GPU
# tests (when a python3 with torch and the binding's stage exist) and tests/backends/gpu_alloc
# through each backend there is (tcp always; torch-store with torch; ucx, ofi, mpi when their
# plugin was built, mpi also needs mpirun). One log per program (or per Criterion test) in
# LOGDIR (default ./gpu-suite-logs); prints each item with its seconds and PASS/FAIL, and ends
# with "N passed, N failed, N skipped" (Criterion tests counted one by one from each program's
# Synthesis line, plus each Python TAP test and each gpu_alloc backend; a Python test file that
# could not run for want of torch or the stage is one skip). Exits 1 when anything failed or
# was skipped.
#
# MNNVL_REQUIRE_GPU=1 is always set (an exported 0 is overridden): this is the GPU suite, and
# a test that would skip for want of a GPU is a failure. Ranks share GPUs (rank r on device
# r % visible GPUs), so one GPU runs everything. Also set: NCCL_NVLS_ENABLE=0
# TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 (no NVLink multicast), and
# LD_LIBRARY_PATH / MNNVL_PLUGIN_DIR / PYTHONPATH for DIR.
#
# --ranks "2 4": which NAME_N_ranks tests run (tests without such a suffix always run).
# --filter GLOB: only the Criterion tests whose "suite/test" matches GLOB (shell pattern).
#   With --ranks other than "2 4" or with --filter, each Criterion test runs on its own
#   (--filter suite/test) with its own log. The Python tests and gpu_alloc do not run then.
# --sanitize TOOL: the C tests only, each rank exec'd as `compute-sanitizer --tool TOOL
#   --error-exitcode 97 $MNNVL_SANITIZER_ARGS` through MNNVL_RANK_LAUNCHER (time limits x10, see
#   tests/lib/testutil.h); the "ERROR SUMMARY: N errors" lines of the logs are added up.
#   racecheck checks shared-memory hazards inside each kernel; it runs on every C test,
#   which is where it applies (it does not see races through peers' symmetric memory).
#   The Python tests and gpu_alloc fork their ranks themselves and are not run. Nor is
#   test_threads: under the sanitizer its thread ranks' collectives time out (H200,
#   2026-12-02: memcheck, 2 thread ranks, an all-reduce of round 1 waited 300 s for its
#   peer; synccheck, 4 thread ranks, no progress in 150 s), though two kernels of two threads
#   of one process that wait for each other do run side by side under both tools. The cause
#   is not found; the process-rank tests run the same kernels under the sanitizer.
set -u

usage() {
    sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}
[ $# -ge 1 ] || usage
dir=$(cd "$1" && pwd) || exit 2
shift
ranks="2 4" sanitize="" out="gpu-suite-logs" filter=""
while [ $# -gt 0 ]; do
    case $1 in
    --ranks) ranks=${2:?}; shift 2 ;;
    --sanitize) sanitize=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --filter) filter=${2:?}; shift 2 ;;
    *) usage ;;
    esac
done
case $sanitize in '' | memcheck | synccheck | racecheck | initcheck) ;; *) usage ;; esac
mkdir -p "$out" && out=$(cd "$out" && pwd) || exit 2
here=$(cd "$(dirname "$0")" && pwd)

export MNNVL_REQUIRE_GPU=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1
export NVSHMEM_DISABLE_NVLS=1
export LD_LIBRARY_PATH="$dir/lib:$dir/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export MNNVL_PLUGIN_DIR="$dir/bootstrap/plugins/.libs"
if [ -n "$sanitize" ]; then
    if ! command -v compute-sanitizer >/dev/null 2>&1; then
        echo "run-suite.sh: --sanitize needs compute-sanitizer on PATH" >&2
        exit 2
    fi
    # Leak checking is left to MNNVL_SANITIZER_ARGS (e.g. "--leak-check full"): the issue's
    # bar is memcheck's access errors.
    # API errors are not counted: the library checks every driver status itself, and two of
    # its calls fail by design (the FABRIC probe's NOT_PERMITTED on hosts without IMEX, and
    # cuStreamIsCapturing's STREAM_CAPTURE_IMPLICIT, which is how a create notices a global
    # capture). --require-cuda-init no: CPU-only ranks (device -1) never initialise CUDA.
    export MNNVL_RANK_LAUNCHER="compute-sanitizer --tool $sanitize --error-exitcode 97 --report-api-errors no --require-cuda-init no ${MNNVL_SANITIZER_ARGS:-}"
fi

passed=0 failed=0 skipped=0 start=$(date +%s)
report() { # NAME SECONDS VERDICT [NOTE]
    printf '%-66s %5ss  %s%s\n' "$1" "$2" "$3" "${4:+  ($4)}"
}

# One Criterion run: PROG LOG [FILTER]; adds its Synthesis to the totals.
criterion_run() {
    local prog=$1 log=$2 pat=${3:-} name t0 rc syn tested passing
    name=$(basename "$prog")${pat:+ $pat}
    t0=$(date +%s)
    if [ -n "$pat" ]; then
        timeout 7200 "$prog" --verbose --filter "$pat" >"$log" 2>&1
    else
        timeout 7200 "$prog" --verbose >"$log" 2>&1
    fi
    rc=$?
    syn=$(grep -a 'Synthesis: Tested:' "$log" | tail -n 1)
    tested=$(echo "$syn" | sed -n 's/.*Tested: \([0-9]*\).*/\1/p')
    passing=$(echo "$syn" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
    if [ -z "$tested" ] || [ -z "$passing" ]; then
        # No synthesis (killed, crashed runner): every test it was to run failed.
        tested=$4 passing=0
        echo "run-suite.sh: no Synthesis line (exit $rc): counting $tested failed" >>"$log"
    fi
    passed=$((passed + passing))
    failed=$((failed + tested - passing))
    if [ "$tested" -eq "$passing" ] && [ "$rc" -eq 0 ]; then
        report "$name" $(($(date +%s) - t0)) PASS "$passing tests"
    else
        [ "$rc" -ne 0 ] && [ "$tested" -eq "$passing" ] && failed=$((failed + 1))
        report "$name" $(($(date +%s) - t0)) FAIL "$((tested - passing)) of $tested failed, exit $rc; $log"
    fi
}

# Tests of a Criterion program, "suite/test" per line.
list_tests() {
    "$1" --list 2>/dev/null | awk '/^[^ ├└│].*: [0-9]+ tests?$/ { s = $1; sub(/:$/, "", s); next }
        { t = $NF; if (s != "" && t != "") print s "/" t }'
}

selected() { # SUITE/TEST
    local t=${1##*/} n
    if [ -n "$filter" ]; then
        # shellcheck disable=SC2254 # the glob is the point
        case $1 in $filter) ;; *) return 1 ;; esac
    fi
    case $t in
    *_[0-9]*_ranks)
        n=${t%_ranks}
        n=${n##*_}
        case " $ranks " in *" $n "*) return 0 ;; *) return 1 ;; esac
        ;;
    esac
    return 0
}

echo "== GPU suite: $dir, ranks \"$ranks\"${sanitize:+, compute-sanitizer $sanitize}, logs in $out"
if [ -x "$dir/tools/mnnvl-info" ] || [ -x "$dir/tools/.libs/mnnvl-info" ]; then
    info=$dir/tools/.libs/mnnvl-info
    [ -x "$info" ] || info=$dir/tools/mnnvl-info
    "$info" >"$out/mnnvl-info.log" 2>&1
    grep -a 'ranks on this machine' "$out/mnnvl-info.log"
fi

progs=0
for prog in "$dir"/tests/gpu/test_*; do
    case $prog in *.o | *.log | *.trs | *.c) continue ;; esac
    if [ ! -f "$prog" ] || [ ! -x "$prog" ]; then continue; fi
    progs=$((progs + 1))
    p=$(basename "$prog")
    if [ -n "$sanitize" ] && [ "$p" = test_threads ]; then
        echo "$p: not run under compute-sanitizer (its thread ranks time out there; see the top of run-suite.sh)"
        continue
    fi
    all=$(list_tests "$prog")
    mine=$(for t in $all; do selected "$t" && echo "$t"; done)
    n_all=$(echo "$all" | grep -c .)
    n_mine=$(echo "$mine" | grep -c .)
    if [ "$n_mine" -eq 0 ]; then
        continue
    elif [ "$n_mine" -eq "$n_all" ] && [ -z "$filter" ]; then
        criterion_run "$prog" "$out/$p.log" "" "$n_all"
    else
        for t in $mine; do
            criterion_run "$prog" "$out/$p.${t//\//.}.log" "$t" 1
        done
    fi
done
if [ $progs -eq 0 ]; then
    echo "run-suite.sh: no GPU test programs in $dir/tests/gpu: counted as 1 failure" >&2
    failed=$((failed + 1))
fi

if [ -n "$sanitize" ]; then
    # memcheck/synccheck/initcheck end with "ERROR SUMMARY: N errors", racecheck with
    # "RACECHECK SUMMARY: H hazards displayed (N errors, W warnings)".
    errs=$(cat "$out"/test_*.log 2>/dev/null |
        sed -n -e 's/.*ERROR SUMMARY: \([0-9]*\) error.*/\1/p' \
            -e 's/.*RACECHECK SUMMARY: [0-9]* hazards* displayed (\([0-9]*\) error.*/\1/p' |
        awk '{ s += $1; n++ } END { printf "%d %d", s, n }')
    echo "== compute-sanitizer $sanitize: ${errs% *} errors in ${errs#* } sanitized rank processes"
    if [ "${errs#* }" -eq 0 ]; then
        echo "run-suite.sh: no ERROR/RACECHECK SUMMARY line at all: did the ranks run under the sanitizer?"
        failed=$((failed + 1))
    fi
elif [ -n "$filter" ]; then
    echo "== --filter selects Criterion tests only: the Python GPU tests and gpu_alloc did not run"
else
    # Python GPU tests (TAP), when the binding and torch are there.
    py=${MNNVL_TEST_TORCH_PYTHON:-python3}
    stage=$dir/bindings/python/stage
    pydir=$here/../bindings/python
    have_torch=0
    "$py" -c 'import torch' >/dev/null 2>&1 && have_torch=1
    if [ -d "$stage/mnnvl" ] && [ $have_torch -eq 1 ]; then
        for t in "$pydir"/test_gpu*.py; do
            [ -f "$t" ] || continue
            p=$(basename "$t" .py)
            t0=$(date +%s)
            PYTHONPATH="$stage${PYTHONPATH:+:$PYTHONPATH}" timeout 3600 "$py" "$t" >"$out/$p.log" 2>&1
            rc=$?
            ok=$(grep -c '^ok ' "$out/$p.log")
            bad=$(grep -c '^not ok ' "$out/$p.log")
            if [ "$ok" -eq 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
            [ $rc -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
            passed=$((passed + ok)) failed=$((failed + bad))
            verdict=PASS
            [ "$bad" -ne 0 ] && verdict=FAIL
            report "python $p" $(($(date +%s) - t0)) $verdict "$ok ok, $bad not ok, exit $rc"
        done
    else
        why="no binding stage in $stage"
        [ $have_torch -eq 1 ] || why="no torch for $py"
        n=0
        for t in "$pydir"/test_gpu*.py; do [ -f "$t" ] && n=$((n + 1)); done
        skipped=$((skipped + n))
        report "python test_gpu*.py ($n files)" 0 SKIP "$why: counted as skipped, which fails the suite"
    fi

    # gpu_alloc through each backend there is.
    backends=tcp
    [ $have_torch -eq 1 ] && backends="$backends torch-store"
    for b in ucx ofi; do
        [ -e "$MNNVL_PLUGIN_DIR/libmnnvl-bootstrap-$b.so" ] && backends="$backends $b"
    done
    if [ -e "$MNNVL_PLUGIN_DIR/libmnnvl-bootstrap-mpi.so" ] && command -v "${MPIRUN:-mpirun}" >/dev/null 2>&1; then
        backends="$backends mpi"
    fi
    for b in $backends; do
        t0=$(date +%s)
        MNNVL_TEST_TORCH_PYTHON=$py sh "$here/../backends/gpu_alloc.sh" "$dir" "$b" >"$out/gpu_alloc.$b.log" 2>&1
        rc=$?
        if [ $rc -eq 0 ] && grep -q "^gpu_alloc $b: .* OK " "$out/gpu_alloc.$b.log"; then
            passed=$((passed + 1))
            report "gpu_alloc $b" $(($(date +%s) - t0)) PASS
        else
            failed=$((failed + 1))
            report "gpu_alloc $b" $(($(date +%s) - t0)) FAIL "exit $rc; $out/gpu_alloc.$b.log"
        fi
    done
fi

echo "== took $(($(date +%s) - start)) s"
echo "$passed passed, $failed failed, $skipped skipped"
# MNNVL_REQUIRE_GPU=1: a skip is a failure too.
[ "$failed" -eq 0 ] && [ "$skipped" -eq 0 ]
