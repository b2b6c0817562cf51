"""The contract module (chronos_training.contract) against docs/RUNS.md and against the run agent, which cannot import
it (chronos_training/agent/chronos_run_agent.py stays one standard-library file in the user data, with no room left
for a copy of the contract's constants): the check goes the other way round. The agent's key formats, schema version
and states are read from its source and compared with the contract's, in both directions: a change on either side
that the other did not follow fails here."""
import ast
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


# A literal of the agent that is a key of the bucket layout, whole or after a prefix: `%s` then one of the layout's
# folders (docs/RUNS.md, "The bucket layout"), or an attempt's record or a checkpoint's part after a prefix.
KEY_LITERAL = re.compile(r"^%s(/(runs|logs|code|checkpoints|artifacts|cache)/|(attempts|data|manifests)/)")


def literals(source: str):
    """Every string constant of the agent's syntax tree (docstrings too: none looks like a key)."""
    return [n.value for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def test_the_agent_knows_the_contracts_schema_version(agent):
    assert int(re.search(r"^SCHEMA = (\d+)$", agent, re.M).group(1)) == contract.SCHEMA_VERSION


def test_the_agents_key_formats_are_the_contracts_and_the_contract_has_no_other(agent):
    used = {v for v in literals(agent) if KEY_LITERAL.match(v)}
    assert used == set(contract.AGENT_KEY_FORMATS), "agent only: %s; contract only: %s" % (
        sorted(used - set(contract.AGENT_KEY_FORMATS)), sorted(set(contract.AGENT_KEY_FORMATS) - used))
    # The run's documents, which the agent reads and writes after its run prefix.
    assert {contract.SPEC, contract.STATUS, contract.CONTROL} <= set(literals(agent))


def test_the_contracts_key_formats_make_the_documented_keys():
    env, run, attempt, chunk, seq = "dev", "my-run-20261201-120000-abcdef", 2, 17, 3
    assert contract.log_key(env, run, attempt, "stderr", chunk) == "dev/logs/%s/002/stderr/0000000017.log" % run
    assert contract.log_key(env, run, attempt, "stderr", chunk).startswith(contract.log_stream_prefix(env, run, attempt, "stderr"))
    assert contract.attempt_key(env, run, attempt) == "dev/runs/%s/attempts/002.json" % run
    assert contract.checkpoint_manifest_key(env, run, seq) == "dev/checkpoints/%s/manifests/0000000003.json" % run
    assert contract.checkpoint_data_key(env, run, seq, "model/a.pt") == "dev/checkpoints/%s/data/0000000003/model/a.pt" % run
    assert contract.blob_key(env, "ab" * 32).startswith(contract.blobs_prefix(env))
    assert contract.artifact_key(env, run, "out.txt") == "dev/artifacts/%s/out.txt" % run


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


# contract.py imports only the standard library and nothing of the package, so its text runs on its own: should the
# user data have room one day, a build step could paste it into the agent (between two markers) instead of the check above.
def test_the_contract_module_runs_on_its_own_for_the_agent_to_carry_a_copy():
    source = open(contract.__file__, encoding="utf-8").read()
    assert not re.search(r"^\s*from \.|^\s*import chronos_training|^\s*from chronos_training", source, re.M)
    namespace = {}
    exec(compile(source, "contract_copy", "exec"), namespace)
    assert namespace["SCHEMA_VERSION"] == contract.SCHEMA_VERSION
    assert namespace["log_key"]("dev", "r", 1, "agent", 2) == contract.log_key("dev", "r", 1, "agent", 2)


NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=timezone.utc)
RUNS_MD = os.path.join(ROOT, "docs", "RUNS.md")


def test_the_runs_policy_and_an_attempts_claim_as_runs_md_documents_them():
    """docs/RUNS.md, "The run spec" (`policy`) and "Next attempts" (the claim's fields)."""
    policy = contract.run_policy(["g6.xlarge"], ["spot", "on-demand"], 3, 2, contract.DEFAULT_CAPACITY_WAIT_SECONDS,
                                 None, 4.25)
    assert policy == {"instanceTypes": ["g6.xlarge"], "markets": ["spot", "on-demand"], "maxAttempts": 3,
                      "onDemandAfterInterruptions": 2, "capacityWaitSeconds": 21600, "imageId": None,
                      "maxLifetimeHours": 4.25}
    spec = contract.run_spec("r-20261201-120000-abcdef", "dev", ["true"], "dev/code/manifests/x.json", 60, NOW, "t",
                             policy=policy)
    assert list(spec)[-1] == "policy" and spec["policy"] == policy
    assert "policy" not in contract.run_spec("r-20261201-120000-abcdef", "dev", ["true"], "m", 60, NOW, "t")
    claim = contract.attempt_claim("r-20261201-120000-abcdef", 2, "keeper", NOW)
    assert {k: claim[k] for k in ("state", "attempt", "launchedBy", "launchedAt", "market", "instanceId")} == {
        "state": "pending", "attempt": 2, "launchedBy": "keeper", "launchedAt": contract.iso(NOW), "market": None,
        "instanceId": None}
    with pytest.raises(ValueError):
        contract.attempt_claim("r-20261201-120000-abcdef", 2, "someone", NOW)
    assert contract.ended_key("dev", "r-1", 3) == "dev/runs/r-1/ended/003.json"
    assert contract.capacity_claim_key("dev", "r-1", 2, 3) == "dev/runs/r-1/capacity/002-003.json"
    with open(RUNS_MD, encoding="utf-8") as f:
        runs_md = f.read()
    for field in list(policy) + ["launchedBy", "launchedAt", "waitingForCapacitySince", "overrides"]:
        assert "`%s`" % field in runs_md, field
    for text in (contract.END_EVENT_SOURCE, contract.END_EVENT_DETAIL_TYPE, "{env}/runs/{runId}/ended/{attempt}.json"):
        assert text in runs_md, text
