#!/usr/bin/env bash
# Prints the path of AWS's amazon-ec2-metadata-mock (AEMM) v1.13.0, the IMDS emulator of the run agent's tests
# (test/agent/), building it with `go install` into the machine's tool cache on first use (scripts/tool-cache.sh; a
# fresh clone reuses it). Needs Go >= 1.23 the first time only. AEMM=/path/to/ec2-metadata-mock skips all of this.
set -euo pipefail
VERSION=v1.13.0
if [ -n "${AEMM:-}" ]; then echo "$AEMM"; exit 0; fi
# shellcheck source=scripts/tool-cache.sh
source "$(cd "$(dirname "$0")/.." && pwd)/tool-cache.sh"
build_aemm() {
  command -v go > /dev/null || { echo "aemm.sh: Go (>= 1.23) is needed to build ec2-metadata-mock $VERSION" >&2; return 1; }
  echo "aemm.sh: building ec2-metadata-mock $VERSION into $TOOL_DIR (once)"
  GOBIN="$TOOL_DIR" go install "github.com/aws/amazon-ec2-metadata-mock/cmd/ec2-metadata-mock@$VERSION"
}
echo "$(cached_tool "aemm-$VERSION" build_aemm)/ec2-metadata-mock"
