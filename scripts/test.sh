#!/usr/bin/env bash
# The test command of the README (and of CI): installs what is missing (ComfyUI included, see install.sh) and the
# browser the UI tests drive (Debian's chromium, through Playwright's Python package; no browser download), then runs
# every test. The integration tests use the ComfyUI install.sh found or set up; without one they skip loudly, and
# with CI=true a skipped integration test fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
echo "installing the test requirements (requirements-test.txt: pytest, playwright, hypothesis)"
python -m pip install -q -r requirements-test.txt
if ! command -v chromium >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "installing Debian's chromium for the browser tests (about 100 packages, a minute or two)"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
            || echo "warning: could not install chromium; the browser tests will skip"
    else
        echo "warning: no chromium, and no root apt-get to install it: the browser tests will skip"
    fi
fi
python -m pytest -q tests "$@"
