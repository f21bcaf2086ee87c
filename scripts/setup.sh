#!/usr/bin/env bash
# Sets up a fresh Debian machine (Node 20, root) for Replica: nats-server, pnpm 12.4.2,
# the workspace's dependencies and a build. Idempotent: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
  echo "setup: installing nats-server (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
fi
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version)" != "12.4.2" ]; then
  echo "setup: installing pnpm 12.4.2 (npm)"
  npm i -g --allow-scripts=pnpm pnpm@12.4.2 >/dev/null
fi
pnpm install --frozen-lockfile
pnpm build
