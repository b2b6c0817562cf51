#!/usr/bin/env bash
# Makes the project's tool environments ahead of the legs that use them, each a no-op when current:
#   uv        .tools/uv-*/ (scripts/uv.sh)
#   moto      .venv-moto/ (the local emulator: deploy:local, test:e2e)
#   scan      .venv-scan/ (cfn-lint, checkov)
#   release   .venv-release/ (pypiserver, twine), .venv-release-peers/ (the rehearsal's aws-cdk-lib, constructs,
#             pytest) and verdaccio + publib (scripts/release/tools.sh)
#   aemm      amazon-ec2-metadata-mock (scripts/agent/aemm.sh)
# The venvs and tools themselves are in the machine's tool cache (scripts/tool-cache.sh): on a machine that made
# them once, each part only links them.
# Usage: bash scripts/prepare.sh [--background] WHAT ...
#   --background: detach and return at once, output in .tools/prepare.log; each part is timed as a
#   background ("bg") leg of CI's table. The legs that need a part wait for it (a lock per environment)
#   and make it themselves if this failed, so starting it early only saves time.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if [ "${1:-}" = "--background" ]; then
  shift
  mkdir -p .tools
  # Its own session where setsid exists (Linux: a Ctrl-C of the caller does not reach it), else nohup alone (macOS).
  if command -v setsid > /dev/null 2>&1; then
    setsid nohup bash "$0" "$@" > .tools/prepare.log 2>&1 < /dev/null &
  else
    nohup bash "$0" "$@" > .tools/prepare.log 2>&1 < /dev/null &
  fi
  exit 0
fi
part() {
  case "$1" in
    uv) bash scripts/uv.sh > /dev/null ;;
    moto) bash scripts/local/moto-venv.sh ;;
    scan) bash -c 'source scripts/python-env.sh && ensure_venv "$PWD/.venv-scan" -- -r "$PWD/scripts/scan/requirements.txt"' ;;
    aemm) bash scripts/agent/aemm.sh > /dev/null ;;
    release) bash -c 'source scripts/release/tools.sh && ensure_npm_tools & source scripts/release/tools.sh && ensure_python_tools && ensure_python_peers "$PWD/.venv-release-peers"; wait' ;;
    *) echo "prepare: unknown part $1" >&2; return 2 ;;
  esac
}
leg() { if [ -n "${CI_LEGS_FILE:-}" ]; then node scripts/ci/leg.js bg "prepare $1" -- bash "$0" "$1"; else part "$1"; fi; }
if [ "$#" -eq 1 ]; then part "$1"; exit; fi
# uv first (every venv needs it), then the rest side by side: they mostly wait on downloads.
if [[ " $* " == *" uv "* ]]; then leg uv; fi
pids=()
for what in "$@"; do
  [ "$what" = uv ] && continue
  leg "$what" & pids+=("$!")
done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
exit "$rc"
