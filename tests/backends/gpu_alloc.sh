#!/bin/sh
# The 4-rank symmetric allocation of tests/backends/gpu_alloc through every bootstrap backend
# in turn, on any number of GPUs (rank r on device r % GPUs: one is enough, and rank 0 says
# how many ranks share each); prints each backend's line and a summary.
#
#   sh tests/backends/gpu_alloc.sh [BUILDDIR] [BACKEND...]
#
# BUILDDIR: where libmnnvl was built with CUDA (default: the current directory when it has
# tests/backends/gpu_alloc, else the tree this script is in). BACKENDs: default all of tcp
# torch-store ucx ofi mpi. A backend whose plugin was not built, or without mpirun, is
# SKIPPED; the exit status is 1 when any backend FAILED.
#
# Environment: MNNVL_TEST_TORCH_PYTHON, the interpreter with torch for the TCPStore server
# (default python3); MPIRUN (default mpirun); UCX_TLS (default tcp,self, as in the
# conformance suite); GPU_ALLOC_ARGS, more options for gpu_alloc (--handle-type posix-fd,
# --timeout-ms 120000, ...).
set -u

here=$(cd "$(dirname "$0")" && pwd)
build=
case ${1:-} in
tcp | torch-store | ucx | ofi | mpi | '') ;;
*)
    build=$1
    shift
    ;;
esac
if [ -z "$build" ]; then
    if [ -x tests/backends/gpu_alloc ]; then build=.; else build=$here/../..; fi
fi
build=$(cd "$build" && pwd) || exit 2
bin=$build/tests/backends/gpu_alloc
if [ ! -x "$bin" ]; then
    echo "gpu_alloc.sh: no $bin: build libmnnvl with CUDA there and run 'make check' (or" \
        "'make tests/backends/gpu_alloc')" >&2
    exit 2
fi
backends=${*:-tcp torch-store ucx ofi mpi}

MNNVL_PLUGIN_DIR=$build/bootstrap/plugins/.libs
UCX_TLS=${UCX_TLS:-tcp,self}
UCX_WARN_UNUSED_ENV_VARS=n
export MNNVL_PLUGIN_DIR UCX_TLS UCX_WARN_UNUSED_ENV_VARS
python=${MNNVL_TEST_TORCH_PYTHON:-python3}
mpirun=${MPIRUN:-mpirun}
args=${GPU_ALLOC_ARGS:-}
limit=
if command -v timeout >/dev/null 2>&1; then limit="timeout 900"; fi

summary=
failed=0
record() { # BACKEND VERDICT LINE
    summary="$summary$(printf '  %-12s %-8s %s' "$1" "$2" "$3")
"
    if [ "$2" = FAILED ]; then failed=1; fi
}

for b in $backends; do
    echo "=== $b"
    case $b in
    mpi | ucx | ofi)
        if [ ! -e "$MNNVL_PLUGIN_DIR/libmnnvl-bootstrap-$b.so" ]; then
            record "$b" SKIPPED "no plugin $MNNVL_PLUGIN_DIR/libmnnvl-bootstrap-$b.so" \
                "(configure did not find its dependency)"
            continue
        fi
        ;;
    esac
    out=$(mktemp)
    if [ "$b" = mpi ]; then
        if ! command -v "$mpirun" >/dev/null 2>&1; then
            record mpi SKIPPED "no $mpirun"
            rm -f "$out"
            continue
        fi
        # Open MPI as in the conformance suite: this host only, over loopback.
        set -- -np 4
        if "$mpirun" --version 2>/dev/null | grep -q "Open MPI"; then
            set -- --allow-run-as-root --oversubscribe -np 4 -x MNNVL_PLUGIN_DIR -x UCX_TLS \
                --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo
        fi
        # shellcheck disable=SC2086 # $limit and $args are word lists
        $limit "$mpirun" "$@" "$bin" $args mpi >"$out"
    else
        # shellcheck disable=SC2086
        $limit "$bin" --python "$python" --store-script "$here/torch_store.py" $args "$b" >"$out"
    fi
    rc=$?
    cat "$out"
    line=$(grep "^gpu_alloc $b:" "$out" | tail -n 1)
    rm -f "$out"
    if [ $rc -eq 0 ] && echo "$line" | grep -q " OK "; then
        record "$b" OK "$line"
    else
        record "$b" FAILED "${line:-gpu_alloc $b: no result line} (exit $rc)"
    fi
done

echo "=== summary"
printf '%s' "$summary"
exit $failed
