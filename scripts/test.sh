#!/usr/bin/env bash
# The test command of the README (and of CI): installs what is missing (ComfyUI included, see install.sh), then
# runs every test. The integration tests use the ComfyUI install.sh found or set up; without one they skip loudly,
# and with CI=true a skipped integration test fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
python -m pytest -q tests "$@"
