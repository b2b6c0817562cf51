"""A run described only by chronos.yaml, end to end on the emulator: the installed `chronos-training` (a process of its
own) against a moto server on loopback stores a secret (`secret set`, the value on stdin), launches the run with
`run --detach` and no other flag, the packaged run agent plays the launched instance (a real process, the instance's
tags as its environment, no metadata service), and `logs` and `status` read the result. Then the grep test of
docs/RUNS.md, "Secrets": every object of the bucket, under every prefix, is read, and the secret's value is in none
of them, although the command printed it; nor in what the launcher printed, nor in the agent's console."""
import json
import os
import subprocess
import sys

import boto3

from moto_world import BUCKET, REGION, Recorded, make_foundation
from test_command import command

SECRET = "wandb-e2e-5f4dcc3b5aa765d61d8327deb882cf99"

TRAIN = r"""
import os, sys
print("epochs", os.environ["EPOCHS"], "resumed", os.environ["CHRONOS_RESUMED"], flush=True)
key = os.environ["WANDB_API_KEY"]
print("logging in with", key, flush=True)
print("key length", len(key), flush=True)
with open(os.path.join(os.environ["CHRONOS_CHECKPOINT_DIR"], "state.json"), "w") as f:
    f.write('{"step": 2}')
"""

RUN_FILE = """# yaml-language-server: $schema=https://raw.githubusercontent.com/chronos/training-infra/main/docs/chronos.schema.json
environment: dev
name: yaml-only
command: python3 train.py --fast
instanceTypes: [t3.micro]
market: on-demand
maxRunLifetime: 1h
maxAttempts: 1
env:
  EPOCHS: 2
secrets:
  WANDB_API_KEY: wandb
"""


def test_a_run_described_only_by_chronos_yaml_runs_and_its_secret_reaches_no_object(tmp_path):
    from moto.server import ThreadedMotoServer
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        endpoint = "http://%s:%d" % (host, port)
        make_foundation(Recorded(endpoint))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CHRONOS_"))}
        env.update(AWS_ENDPOINT_URL=endpoint, AWS_REGION=REGION, AWS_ACCESS_KEY_ID="testing",
                   AWS_SECRET_ACCESS_KEY="testing", CHRONOS_CACHE_DIR=str(tmp_path / "cache"))
        code = tmp_path / "code"
        code.mkdir()
        (code / "train.py").write_text(TRAIN)
        (code / "chronos.yaml").write_text(RUN_FILE)

        def cli(*args, stdin=None):
            return subprocess.run([command()] + list(args), env=env, cwd=str(code), input=stdin, capture_output=True,
                                  text=True, timeout=120)

        stored = cli("secret", "set", "wandb", "--env", "dev", stdin=SECRET + "\n")
        assert stored.returncode == 0, stored.stderr
        launched = cli("run", "--detach")
        assert launched.returncode == 0, launched.stderr
        run_id = launched.stdout.strip()
        assert run_id.startswith("yaml-only-")

        ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing",
                           aws_secret_access_key="testing")
        reservations = ec2.describe_instances(Filters=[{"Name": "tag:ChronosRunId", "Values": [run_id]}])["Reservations"]
        (instance,) = [i for r in reservations for i in r["Instances"]]
        tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
        assert (tags["ChronosAttempt"], tags["ChronosBucket"], instance["InstanceType"]) == ("1", BUCKET, "t3.micro")

        # The instance: the packaged agent, with what its tags and the instance role would give it.
        agent = subprocess.run([command(), "agent-path"], capture_output=True, text=True).stdout.strip()
        agent_env = dict(env, CHRONOS_RUN_ID=run_id, CHRONOS_ATTEMPT=tags["ChronosAttempt"],
                         CHRONOS_BUCKET=tags["ChronosBucket"], CHRONOS_ENVIRONMENT="dev",
                         CHRONOS_HOME=str(tmp_path / "instance"), AWS_EC2_METADATA_DISABLED="true",
                         CHRONOS_POWEROFF_COMMAND="true")
        played = subprocess.run([sys.executable, agent, "run"], env=agent_env, capture_output=True, timeout=120)
        console = played.stdout + played.stderr
        assert played.returncode == 0, console.decode(errors="replace")

        status = cli("status", run_id, "--env", "dev")
        assert status.returncode == 0 and "succeeded" in status.stdout, status.stdout + status.stderr
        logs = cli("logs", run_id, "--env", "dev")
        assert logs.returncode == 0, logs.stderr
        assert logs.stdout == "epochs 2 resumed 0\nlogging in with ***\nkey length %d\n" % len(SECRET)

        s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing",
                          aws_secret_access_key="testing")
        spec = json.loads(s3.get_object(Bucket=BUCKET, Key="dev/runs/%s/spec.json" % run_id)["Body"].read())
        assert (spec["command"], spec["env"], spec["secrets"]) == (
            ["python3", "train.py", "--fast"], {"EPOCHS": "2"}, {"WANDB_API_KEY": "wandb"})
        keys = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
                for o in p.get("Contents", [])]
        assert any("/checkpoints/" in k for k in keys) and any("/logs/" in k for k in keys)
        assert any("/code/blobs/" in k for k in keys)
        for key in keys:
            body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            assert SECRET.encode() not in body, "the secret is in s3://%s/%s" % (BUCKET, key)
        for printed in (stored.stdout + stored.stderr, launched.stdout + launched.stderr, logs.stdout + logs.stderr,
                        status.stdout, console.decode(errors="replace")):
            assert SECRET not in printed
    finally:
        moto.stop()
