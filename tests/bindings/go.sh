#!/bin/sh
# The Go binding's CPU scenarios (tests/bindings/go/mnnvl_test.go), as TAP: go test runs them
# in a module of their own that replaces the binding's module path with the build tree's.
. "$(dirname "$0")/tap.sh"
[ -z "$MNNVL_GO_WHY" ] || skip_all "the Go binding is not built: $MNNVL_GO_WHY"
run=$b/tests/bindings/go-run
mkdir -p "$run" || exit 1
cp "$s/tests/bindings/go/mnnvl_test.go" "$run/" || exit 1
cat > "$run/go.mod" <<MOD
module mnnvltest

go 1.19

require github.com/libmnnvl/libmnnvl/bindings/go/mnnvl v0.0.0

replace github.com/libmnnvl/libmnnvl/bindings/go/mnnvl => $b/bindings/go/stage
MOD
cd "$run" || exit 1
GOCACHE=$b/bindings/go/cache GOPATH=$b/bindings/go/gopath GOFLAGS=-mod=mod GOPROXY=off \
  GO111MODULE=on CGO_ENABLED=1 PKG_CONFIG_PATH=$b/bindings/go \
  $MNNVL_INTERP_ENV "$GO" test -v -count=1 . > go-test.out 2>&1
status=$?
# go test -v says "--- PASS: TestX (0.00s)"; everything else becomes a TAP comment.
awk -v status=$status '
  /^--- (PASS|FAIL|SKIP): / {
    n++; name = $3
    if ($2 == "PASS:") print "ok " n " - " name
    else if ($2 == "SKIP:") print "ok " n " - " name " # SKIP"
    else { print "not ok " n " - " name; failed++ }
    next
  }
  { print "# " $0 }
  END {
    if (status != 0 && !failed) { n++; print "not ok " n " - go test exited with " status }
    print "1.." n
  }' go-test.out
