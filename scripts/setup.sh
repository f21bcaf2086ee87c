#!/usr/bin/env bash
# Sets up a fresh Debian machine (Node 20, root) for Replica: nats-server, podman and runc, pnpm 12.4.2,
# the workspace's dependencies and a build. Idempotent: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# from Debian: nats-server (the nats transport's tests, pnpm cluster, pnpm compare), and
# podman with runc (the image test builds infra/docker/Dockerfile and runs two containers)
missing=()
if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then missing+=(nats-server); fi
if ! command -v podman >/dev/null 2>&1; then missing+=(podman); fi
if ! command -v runc >/dev/null 2>&1; then missing+=(runc); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version)" != "12.4.2" ]; then
  echo "setup: installing pnpm 12.4.2 (npm)"
  npm i -g --allow-scripts=pnpm pnpm@12.4.2 >/dev/null
fi
pnpm install --frozen-lockfile
pnpm build
