"""A sharded checkpoint of the real torch.distributed.checkpoint (DCP) on CPU, through a spot interruption: two gloo
ranks write step-1 whole, then step-2, whose `.metadata` is never written (the coordinator hangs before it, then the
spot notice's SIGTERM kills the job). The manifest commits step-1 only; the next attempt restores it and `dcp.load`
succeeds, with every tensor equal (docs/RUNS.md, "Checkpoints": a directory counts once its marker exists).

torch comes from scripts/agent/torch-venv.sh (TORCH_PYTHON), installed once into the machine's tool cache: the leg
`npm run test:agent:slow` (scripts/agent/test-slow.sh) sets it; without it this test is skipped."""
import os
import time

import pytest
from conftest import FIXTURES, FakeImds, free_port, spot_drain

TORCH_PYTHON = os.environ.get("TORCH_PYTHON")
pytestmark = pytest.mark.skipif(not TORCH_PYTHON, reason="TORCH_PYTHON unset (scripts/agent/torch-venv.sh)")


def test_a_dcp_checkpoint_interrupted_before_its_metadata_restores_the_last_whole_one_and_loads(make_run, tmp_path):
    run = make_run()
    script = os.path.join(FIXTURES, "dcp_train.py")
    signal_file = str(tmp_path / "shards-written")
    imds = FakeImds({"tags/instance/ChronosRunId": (200, run.run_id), "tags/instance/ChronosAttempt": (200, "1"),
                     "instance-life-cycle": (200, "spot")})
    try:
        run.put_spec([TORCH_PYTHON, script, "save", str(free_port())], checkpointIntervalSeconds=1, stopGraceSeconds=5,
                     env={"DCP_SIGNAL": signal_file})
        agent = run.start_agent(run.env(imds))
        deadline = time.time() + 120
        while not os.path.exists(signal_file):
            assert time.time() < deadline and agent.poll() is None, run.output(agent)
            time.sleep(0.2)
        time.sleep(3)  # interval checkpoints see step-2's shards without its .metadata
        spot_drain(run, agent, imds, 40)
    finally:
        imds.close()
    status = run.status()
    assert status["state"] == "interrupted", status
    log = run.log(1, "agent")
    assert b"checkpoint directory step-2 is being written (.metadata missing or older than its files)" in log
    paths = sorted(f["path"] for f in run.get_json(status["lastCheckpoint"]["manifestKey"])["files"])
    assert paths[0] == "step-1/.metadata" and len(paths) == 7 and all(p.startswith("step-1/") for p in paths), paths
    assert [p for p in paths if p.endswith(".distcp")] == ["step-1/__%d_%d.distcp" % (r, i) for r in (0, 1)
                                                            for i in range(3)]

    run.put_spec([TORCH_PYTHON, script, "load"])
    imds2 = FakeImds({"tags/instance/ChronosRunId": (200, run.run_id), "tags/instance/ChronosAttempt": (200, "2"),
                      "instance-life-cycle": (200, "on-demand")})
    try:
        p = run.agent(run.env(imds2, home="home2"), timeout=120)
    finally:
        imds2.close()
    assert p.returncode == 0, run.output(p)
    assert run.status()["state"] == "succeeded", run.output(p)
    out = run.log(2, "stdout")
    assert b"whole: ['step-1']; present: ['step-1']\nloaded step-1: equal\n" == out, out
