#!/usr/bin/env bash
# Build the documentation site, offline, with warnings as errors.
#   docs/build.sh [SITE_DIR]      (default: site/)
# Needs the docs extra: python3 -m pip install -e ".[docs]"
set -euo pipefail
cd "$(dirname "$0")/.."
export NO_MKDOCS_2_WARNING=1  # silence mkdocs-material's end-of-life banner
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" python3 -m mkdocs build --strict --site-dir "${1:-site}"
