#!/usr/bin/env bash
# Mutation testing of the run agent (`npm run mutation`; not a CI leg): mutmut (pinned, scripts/mutation/requirements.txt,
# in .venv-mutation/ made like the project's other venvs) mutates the agent's drain, checkpoint, restore and lifetime
# functions and runs, against each mutant, the in-process tests that guard them (test/agent/test_core.py: an in-memory
# S3, a few seconds). It works in a copy, .tools/mutation/ (the agent, those tests, a setup.cfg), and ends with the
# score per group (scripts/mutation/report.py); the survivors are listed, and `mutmut show NAME` run there shows one.
# docs/DEVELOPMENT.md, "Mutation testing", names the survivors that are harmless and why.
# Usage: bash scripts/mutation/run.sh [GROUP ...]   (groups: lifetime drain checkpoint restore; default all)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
start=$SECONDS
# shellcheck source=scripts/python-env.sh
source "$root/scripts/python-env.sh"
ensure_venv "$root/.venv-mutation" -- -r "$root/test/agent/requirements.txt" -r "$root/scripts/mutation/requirements.txt" \
  -c "$root/scripts/local/requirements-moto.txt"
groups=("$@")
[ "${#groups[@]}" -gt 0 ] || groups=(lifetime drain checkpoint restore)
patterns=()
for g in "${groups[@]}"; do
  for f in $("$root/.venv-mutation/bin/python" "$root/scripts/mutation/report.py" --functions "$g"); do
    patterns+=("agent.chronos_run_agent.xǁAgentǁ${f}__mutmut_*")
  done
done
work="$root/.tools/mutation"
rm -rf "$work"
mkdir -p "$work/agent" "$work/test/agent"
cp chronos-training/src/chronos_training/agent/chronos_run_agent.py "$work/agent/"
# test/agent/conftest.py finds the agent at this path from the copy's root (mutmut's mutants/ folder included).
export CHRONOS_TEST_AGENT_RELPATH=agent/chronos_run_agent.py
cp test/agent/conftest.py test/agent/test_core.py "$work/test/agent/"
cat > "$work/setup.cfg" <<'CFG'
[mutmut]
source_paths = agent/
pytest_add_cli_args_test_selection = test/agent/test_core.py
pytest_add_cli_args = -p no:cacheprovider -p no:xdist
CFG
cd "$work"
rc=0
PYTHONDONTWRITEBYTECODE=1 "$root/.venv-mutation/bin/mutmut" run --max-children 2 "${patterns[@]}" > mutmut.log 2>&1 || rc=$?
if [ "$rc" != 0 ]; then tail -40 mutmut.log >&2; echo "mutation: mutmut failed ($rc); its log: $work/mutmut.log" >&2; exit "$rc"; fi
"$root/.venv-mutation/bin/mutmut" results --all true > results.txt 2>&1
"$root/.venv-mutation/bin/python" "$root/scripts/mutation/report.py" results.txt "${groups[@]}"
echo "mutation: $((SECONDS - start)) s wall; work directory $work"
