#!/bin/bash
# Installs what the bootstrap backends' tests need (called by .ci/run): Open MPI and mpi4py
# for the mpi plugin, UCX and libfabric headers, torch for Debian's /usr/bin/python3 (its
# TCPStore server is the peer of the torch-store tests; the machine's default python3 is a
# pyenv interpreter without torch), iproute2 for the two-host tests in network namespaces.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
for pkg in libopenmpi-dev openmpi-bin python3-mpi4py libucx-dev libfabric-dev python3-torch \
           iproute2; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
/usr/bin/python3 -c 'import torch.distributed' || echo "warning: /usr/bin/python3 has no torch: the torch-store tests will skip" >&2
