#!/usr/bin/env bash
# Installs Superset's embedded SDK (@superset-ui/embedded-sdk, pinned in
# package.json and package-lock.json) into e2e/embedded/node_modules for the
# end-to-end test's host page (e2e/embedded_test.go). Idempotent: a
# node_modules that matches the lock file is left alone.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v npm >/dev/null 2>&1; then
  echo "e2e/embedded/install.sh: npm not found (install nodejs and npm)" >&2
  exit 1
fi

stamp=node_modules/.sgw-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
   [ -f node_modules/@superset-ui/embedded-sdk/bundle/index.js ]; then
  exit 0
fi

# npm ci removes node_modules first and installs exactly the lock file;
# no lifecycle scripts run (the SDK needs none).
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
echo "e2e/embedded/install.sh: @superset-ui/embedded-sdk $(node -p 'require("./node_modules/@superset-ui/embedded-sdk/package.json").version') installed"
