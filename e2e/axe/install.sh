#!/usr/bin/env bash
# Installs axe-core (pinned in package.json and package-lock.json) into
# e2e/axe/node_modules for the accessibility end-to-end test
# (e2e/pages_test.go), which injects it into Chromium over every gateway
# page. Idempotent: a node_modules that matches the lock file is left alone.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v npm >/dev/null 2>&1; then
  echo "e2e/axe/install.sh: npm not found (install nodejs and npm)" >&2
  exit 1
fi

stamp=node_modules/.sgw-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
   [ -f node_modules/axe-core/axe.min.js ]; then
  exit 0
fi

# npm ci installs exactly the lock file; axe-core needs no lifecycle script.
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
echo "e2e/axe/install.sh: axe-core $(node -p 'require("./node_modules/axe-core/package.json").version') installed"
