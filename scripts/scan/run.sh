#!/usr/bin/env bash
# Runs cfn-lint and checkov (pinned, installed from PyPI into .venv-scan/) over
# every template the integ app synthesizes: the sample app for dev, stage and
# prod, and the test-case stacks of integ/*.snapshot/. Fails on any cfn-lint
# error or warning and on any checkov finding that is not skipped inline.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
venv="$root/.venv-scan"
req="$root/scripts/scan/requirements.txt"
stamp="$venv/.requirements.sha"
if [ ! -f "$stamp" ] || [ "$(sha256sum "$req" | cut -d' ' -f1)" != "$(cat "$stamp")" ]; then
  start=$(date +%s)
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  sha256sum "$req" | cut -d' ' -f1 > "$stamp"
  echo "scan: installed cfn-lint and checkov in $(( $(date +%s) - start )) s"
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
templates=()
for environment in dev stage prod; do
  (cd integ && npx cdk synth -q -c environment="$environment" -o "$out/$environment" >/dev/null 2>"$out/synth.err") \
    || { cat "$out/synth.err" >&2; exit 1; }
  templates+=("$out/$environment/ChronosTraining.template.json")
done
# The integ test cases' stacks (not their assertion stacks, which hold integ-tests-alpha's harness).
for t in integ/*.snapshot/*.template.json; do
  case "$t" in *-Assertions.template.json) ;; *) templates+=("$t") ;; esac
done

lint_findings=0
checkov_failed=0
checkov_skipped=0
checkov_passed=0
for t in "${templates[@]}"; do
  name="${t#"$out"/}"
  if ! "$venv/bin/cfn-lint" --format parseable "$t" > "$out/lint.txt"; then
    cat "$out/lint.txt"
  fi
  n=$(grep -c . "$out/lint.txt" || true)
  lint_findings=$((lint_findings + n))
  "$venv/bin/checkov" -f "$t" --framework cloudformation --skip-download --quiet --compact -o json > "$out/checkov.json" || true
  read -r passed failed skipped < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
d = d[0] if isinstance(d, list) else d
s = d.get("summary", {})
print(s.get("passed", 0), s.get("failed", 0), s.get("skipped", 0))
for c in d.get("results", {}).get("failed_checks", []):
    print("  checkov FAILED", c["check_id"], c["check_name"], c["resource"], file=sys.stderr, flush=True)
' "$out/checkov.json")
  checkov_passed=$((checkov_passed + passed)); checkov_failed=$((checkov_failed + failed)); checkov_skipped=$((checkov_skipped + skipped))
  echo "scan: $name: cfn-lint $n finding(s); checkov $passed passed, $failed failed, $skipped skipped"
done
echo "scan: ${#templates[@]} templates; cfn-lint findings: $lint_findings; checkov: $checkov_passed passed, $checkov_failed failed, $checkov_skipped skipped (inline, with reasons)"
[ "$lint_findings" -eq 0 ] && [ "$checkov_failed" -eq 0 ]
