#!/usr/bin/env bash
# Install everything the tests need (Debian packages included), then lint, type-check, check the
# import contracts and run the whole test suite (slow tests excluded; run them with: -m slow).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install.sh --test
echo "== ruff"; .venv/bin/ruff check registry edge config tests bench
echo "== mypy --strict"; .venv/bin/mypy
echo "== import contracts"; .venv/bin/lint-imports
echo "== pytest"; exec .venv/bin/pytest -q "$@"
