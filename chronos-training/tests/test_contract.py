"""The contract module (chronos_training.contract) against docs/RUNS.md and against the run agent, which still
carries its own copy of the key layout (agent/chronos_run_agent.py stays one standard-library file). Each key of the
agent is built with the agent's own format string, read from its source, and compared with the contract's: a change
on either side that the other did not follow fails here."""
import os
import re
from datetime import datetime, timezone

import pytest

from chronos_training import contract

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))


@pytest.fixture(scope="module")
def agent():
    with open(os.path.join(ROOT, "chronos-training", "src", "chronos_training", "agent", "chronos_run_agent.py"), encoding="utf-8") as f:
        return f.read()


def agent_format(source: str, pattern: str) -> str:
    """The agent's format string literal that matches `pattern` (a regular expression of the literal's text)."""
    m = re.search(r'"(%s)"' % pattern, source)
    assert m, "the agent has no key format like %s" % pattern
    return m.group(1)


def test_the_agent_knows_the_contracts_schema_version(agent):
    assert int(re.search(r"^SCHEMA = (\d+)$", agent, re.M).group(1)) == contract.SCHEMA_VERSION


def test_the_agents_keys_are_the_contracts(agent):
    env, run, attempt, chunk, seq = "dev", "my-run-20261201-120000-abcdef", 2, 17, 3
    assert agent_format(agent, r"%s/logs/%s/%03d/%s/%010d\.log") % (env, run, attempt, "stderr", chunk) == \
        contract.log_key(env, run, attempt, "stderr", chunk)
    assert agent_format(agent, r"%s/runs/%s/") % (env, run) == contract.run_prefix(env, run)
    ck_prefix = agent_format(agent, r"%s/checkpoints/%s/") % (env, run)
    assert agent_format(agent, r"%smanifests/%010d\.json") % (ck_prefix, seq) == \
        contract.checkpoint_manifest_key(env, run, seq)
    assert agent_format(agent, r"%sdata/%010d/%s") % (ck_prefix, seq, "model/a.pt") == \
        contract.checkpoint_data_key(env, run, seq, "model/a.pt")
    assert agent_format(agent, r"%s/code/blobs/%s") % (env, "ab" * 32) == contract.blob_key(env, "ab" * 32)
    assert agent_format(agent, r"%s/artifacts/%s/%s") % (env, run, "out.txt") == contract.artifact_key(env, run, "out.txt")


def test_the_agent_writes_only_the_contracts_states(agent):
    written = set(re.findall(r'"(pending|running|succeeded|failed|interrupted|timed-out|stopped)"', agent))
    assert written - {"pending"} <= set(contract.STATES)
    assert {"succeeded", "failed", "interrupted", "timed-out"} <= written


# docs/RUNS.md, "The bucket layout": the keys of the table, and "{sequence} and {chunk} are zero-padded to ten
# digits", "{attempt} ... zero-padded to three digits (001)".
def test_the_key_layout_of_runs_md():
    with open(os.path.join(ROOT, "docs", "RUNS.md"), encoding="utf-8") as f:
        doc = f.read()
    for documented, made in [
        ("{env}/runs/{runId}/spec.json", contract.spec_key("{env}", "{runId}")),
        ("{env}/runs/{runId}/status.json", contract.status_key("{env}", "{runId}")),
        ("{env}/runs/{runId}/control.json", contract.control_key("{env}", "{runId}")),
        ("{env}/code/manifests/{sha256}.json", contract.code_manifest_key("{env}", "{sha256}")),
        ("{env}/code/blobs/{sha256}", contract.blob_key("{env}", "{sha256}"))]:
        assert "`%s`" % documented in doc
        assert made == documented
    assert contract.attempt_key("dev", "r", 1) == "dev/runs/r/attempts/001.json"
    assert contract.log_key("dev", "r", 1, "stdout", 0) == "dev/logs/r/001/stdout/0000000000.log"


def test_run_ids_and_the_pending_status():
    now = datetime(2026, 12, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert re.match(r"^my-model-20261201-120000-[0-9a-f]{6}$", contract.new_run_id("My  Model!", now))
    assert re.match(r"^run-20261201-120000-[0-9a-f]{6}$", contract.new_run_id("---", now))
    long = contract.new_run_id("x" * 80, now)
    assert contract.is_run_id(long) and len(long) <= 63
    status = contract.pending_status("r-1", 2, now)
    assert (status["state"], status["attempt"], status["startedAt"]) == ("pending", 2, "2026-12-01T12:00:00.000Z")
    assert contract.newer_schema({"schemaVersion": 2}) == 2 and contract.newer_schema({"schemaVersion": 1}) is None
    assert contract.lifetime_tag_hours(3601) == 1.26 and contract.lifetime_tag_hours(14400) == 4.25


# How the agent can carry the contract and stay one file: contract.py imports only the standard library and nothing of
# the package, so its text runs on its own (and, pasted between two markers of the agent by a build step, there).
def test_the_contract_module_runs_on_its_own_for_the_agent_to_carry_a_copy():
    source = open(contract.__file__, encoding="utf-8").read()
    assert not re.search(r"^\s*from \.|^\s*import chronos_training|^\s*from chronos_training", source, re.M)
    namespace = {}
    exec(compile(source, "contract_copy", "exec"), namespace)
    assert namespace["SCHEMA_VERSION"] == contract.SCHEMA_VERSION
    assert namespace["log_key"]("dev", "r", 1, "agent", 2) == contract.log_key("dev", "r", 1, "agent", 2)
