#!/usr/bin/env bash
# Runs cfn-lint and checkov (pinned, installed from PyPI with uv into .venv-scan/) over
# every template the integ app synthesizes: the sample app for dev, stage and
# prod, and the test-case stacks of integ/*.snapshot/. Fails on any cfn-lint
# error or warning and on any checkov finding that is not skipped inline (or below, on aws-cdk-lib's own resources).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
venv="$root/.venv-scan"
# shellcheck source=scripts/python-env.sh
source "$root/scripts/python-env.sh"
ensure_venv "$venv" -- -r "$root/scripts/scan/requirements.txt"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
templates=()
# The three synths side by side (each mostly waits on its own ts-node start).
pids=()
for environment in dev stage prod; do
  (cd integ && npx cdk synth -q -c environment="$environment" -o "$out/$environment" >/dev/null 2>"$out/synth-$environment.err") &
  pids+=("$!")
done
for i in "${!pids[@]}"; do
  environment=(dev stage prod); environment="${environment[$i]}"
  wait "${pids[$i]}" || { cat "$out/synth-$environment.err" >&2; exit 1; }
  templates+=("$out/$environment/ChronosTraining.template.json")
done
# The integ test cases' stacks (not their assertion stacks, which hold integ-tests-alpha's harness).
for t in integ/*.snapshot/*.template.json; do
  case "$t" in *-Assertions.template.json) ;; *) templates+=("$root/$t") ;; esac
done
# A required count: every integ case (integ/integ.*.ts) has at least one test-case template in its snapshot.
for c in integ/integ.*.ts; do
  compgen -G "$c.snapshot/*.template.json" > /dev/null || { echo "scan: $c has no snapshot template" >&2; exit 1; }
done
cases=(integ/integ.*.ts)
if [ "${#cases[@]}" -lt 1 ] || [ "${#templates[@]}" -lt $((3 + ${#cases[@]})) ]; then
  echo "scan: ${#templates[@]} templates, fewer than the 3 environments and ${#cases[@]} integ cases" >&2; exit 1
fi

# One cfn-lint and one checkov run over every template (each tool's start-up costs seconds), with the
# findings counted per template from their reports.
# W3005 (a DependsOn that a Ref or GetAtt already implies) is ignored everywhere: aws-cdk-lib's lambda.Function and
# CustomResourceProvider emit it on their own resources, it changes nothing at deploy time, and overriding
# aws-cdk-lib's DependsOn to quiet it would tie the library to aws-cdk-lib's construct IDs (docs/COMPLIANCE.md).
# Its exit code is checked by its documented bits, and its log (--info) must name every template it was given
# (scripts/scan/cfn_lint_verdict.py): a cfn-lint that crashed or skipped templates is not "no findings".
lint_rc=0
"$venv/bin/cfn-lint" --info --format parseable --ignore-checks W3005 -- "${templates[@]}" > "$out/lint.txt" 2> "$out/lint.log" || lint_rc=$?
lint_trusted=yes
python3 scripts/scan/cfn_lint_verdict.py "$lint_rc" "$out/lint.txt" "$out/lint.log" "${templates[@]}" || lint_trusted=no
if [ "$lint_trusted" = no ]; then grep -v " - cfnlint[.a-z_]* - INFO - " "$out/lint.log" >&2 || true; fi
checkov_args=()
for t in "${templates[@]}"; do checkov_args+=(-f "$t"); done
"$venv/bin/checkov" "${checkov_args[@]}" --framework cloudformation --skip-download --compact -o json > "$out/checkov.json" || true
python3 - "$out" "$root" "$out/lint.txt" "$out/checkov.json" "$lint_trusted" "${templates[@]}" <<'PY'
import collections, json, os, sys
out, root, lint, checkov, lint_trusted, *templates = sys.argv[1:]
lines = [l for l in open(lint).read().splitlines() if l.strip()]
d = json.load(open(checkov))
reports = d if isinstance(d, list) else [d]
# Findings on resources aws-cdk-lib creates and the library leaves as rendered, skipped here rather than by metadata
# on them (which would depend on aws-cdk-lib's construct IDs); each with its reason in docs/COMPLIANCE.md.
CONFIG_SKIPS = {
    # aws-cdk-lib's auto-delete-objects handler (autoDeleteObjects: true), invoked only by CloudFormation.
    ("CKV_AWS_115", "AWS::Lambda::Function.CustomS3AutoDeleteObjectsCustomResourceProviderHandler"),
    ("CKV_AWS_116", "AWS::Lambda::Function.CustomS3AutoDeleteObjectsCustomResourceProviderHandler"),
    ("CKV_AWS_117", "AWS::Lambda::Function.CustomS3AutoDeleteObjectsCustomResourceProviderHandler"),
}
def config_skipped(c):
    return any(c["check_id"] == check and c["resource"].startswith(prefix) for check, prefix in CONFIG_SKIPS)
counts = {k: collections.Counter() for k in ("passed", "failed", "skipped")}
totals = collections.Counter()
for r in reports:
    for k in counts:
        for c in r.get("results", {}).get(f"{k}_checks", []):
            kind = "skipped" if k == "failed" and config_skipped(c) else k
            totals[kind] += 1
            counts[kind][os.path.realpath(c["file_abs_path"])] += 1
            if kind == "failed":
                print("  checkov FAILED", c["check_id"], c["check_name"], c["resource"], c["file_abs_path"], file=sys.stderr, flush=True)
attributed = 0
for t in templates:
    rt = os.path.realpath(t)
    n = sum(1 for l in lines if l.startswith(t + ":"))
    attributed += n
    for l in lines:
        if l.startswith(t + ":"):
            print(l)
    name = os.path.relpath(t, out) if t.startswith(out + "/") else os.path.relpath(t, root)
    print(f"scan: {name}: cfn-lint {n} finding(s); checkov {counts['passed'][rt]} passed, {counts['failed'][rt]} failed, "
          f"{counts['skipped'][rt]} skipped")
for l in lines:  # a finding that names no template (cannot happen, but never hide one)
    if not any(l.startswith(t + ":") for t in templates):
        print(l)
lint_findings = len(lines)
ok_reports = len(reports) >= 1 and all("summary" in r for r in reports)
if not ok_reports:
    print("scan: checkov printed no report", file=sys.stderr)
print(f"scan: {len(templates)} templates; cfn-lint findings: {lint_findings}; checkov: {totals['passed']} passed, "
      f"{totals['failed']} failed, {totals['skipped']} skipped (inline or in this script, with reasons)")
sys.exit(0 if lint_trusted == "yes" and lint_findings == 0 and totals["failed"] == 0 and ok_reports and totals["passed"] > 0 else 1)
PY
