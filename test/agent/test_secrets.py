"""A run's secrets (docs/RUNS.md, "Secrets"): the agent, a real process against a moto server (S3 and SSM), reads
each secret's SSM SecureString parameter at the attempt's start and gives the value only to the command's
environment. The grep test: after the run, every object of the bucket (all prefixes), the agent's console and its log
file are read, and the value is in none of them, although the command printed it (the logs show *** instead)."""
import hashlib
import os
import sys

import boto3

from conftest import ENV_NAME

# A value long enough to be masked, with characters a regex or a shell would treat specially.
SECRET = "wandb-0123456789abcdef$HOME.*[x]"
# A PEM-like value on three lines: each line is masked on its own.
MULTILINE = "-----BEGIN KEY-----\nQUJDREVGR0hJSktMTU5PUA==\n-----END KEY-----"

PRINTS = r"""
import hashlib, os, sys, time
v, m = os.environ["WANDB_API_KEY"], os.environ["DEPLOY_KEY"]
print("sha256", hashlib.sha256(v.encode()).hexdigest(), hashlib.sha256(m.encode()).hexdigest(), flush=True)
print("the key is", v, "and again", v, flush=True)
sys.stderr.write("stderr: " + v + "\n"); sys.stderr.flush()
sys.stdout.write("split: " + v[:7]); sys.stdout.flush()  # a value cut across two reads of the pipe
time.sleep(0.5)
sys.stdout.write(v[7:] + " end\n"); sys.stdout.flush()
print(m, flush=True)
sys.stdout.write("no newline at the end " + v)
"""


def ssm(run):
    return boto3.client("ssm", endpoint_url=run.moto, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def every_object(run):
    """Every object of the run's bucket, under every prefix: (key, body)."""
    pages = run.s3.get_paginator("list_objects_v2").paginate(Bucket=run.bucket)
    keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
    return [(k, run.get(k)) for k in keys]


def needles(value):
    return [value.encode()] + [line.encode() for line in value.splitlines() if len(line) >= 4]


def test_a_secret_reaches_the_commands_environment_only_and_no_object_of_the_bucket(make_run):
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    client = ssm(run)
    client.put_parameter(Name="/chronos-training/%s/secrets/wandb" % ENV_NAME, Value=SECRET, Type="SecureString")
    client.put_parameter(Name="/chronos-training/%s/secrets/deploy.key" % ENV_NAME, Value=MULTILINE,
                         Type="SecureString")
    # Another environment's parameter of the same name is not the one read.
    client.put_parameter(Name="/chronos-training/other/secrets/wandb", Value="not-this-one", Type="SecureString")
    spec = run.put_spec([sys.executable, "-c", PRINTS], secrets={"WANDB_API_KEY": "wandb", "DEPLOY_KEY": "deploy.key"})
    assert "secrets" in spec
    p = run.agent(run.env(aemm, AWS_ENDPOINT_URL_SSM=run.moto))
    status = run.status()
    assert p.returncode == 0 and status["state"] == "succeeded", run.output(p)

    stdout = run.log(1, "stdout").decode()
    # The command had the values: their hashes are right.
    assert "sha256 %s %s\n" % (hashlib.sha256(SECRET.encode()).hexdigest(),
                               hashlib.sha256(MULTILINE.encode()).hexdigest()) in stdout
    # What it printed is masked, in each stream, a value cut across two reads included, and the last line without
    # its newline.
    assert "the key is *** and again ***\n" in stdout
    assert "split: *** end\n" in stdout
    assert "***\n***\n***\n" in stdout
    assert stdout.endswith("no newline at the end ***")
    assert run.log(1, "stderr") == b"stderr: ***\n"
    # The agent names the secrets it read, never their values.
    assert "secrets: DEPLOY_KEY, WANDB_API_KEY" in run.log(1, "agent").decode()

    objects = every_object(run)
    assert any("/logs/" in k for k, _ in objects) and any(k.endswith("spec.json") for k, _ in objects)
    for key, body in objects:
        for needle in needles(SECRET) + needles(MULTILINE):
            assert needle not in body, "the secret is in s3://%s/%s" % (run.bucket, key)
    console = run.output(p).encode()
    agent_log = open(os.path.join(str(run.tmp), "home", "work", "logs", "agent.log"), "rb").read()
    local_logs = [open(os.path.join(str(run.tmp), "home", "work", "logs", n + ".log"), "rb").read()
                  for n in ("stdout", "stderr")]
    assert b"the key is ***" in console  # the console shows what the command printed, masked
    for text in [console, agent_log] + local_logs:
        for needle in needles(SECRET) + needles(MULTILINE):
            assert needle not in text


def test_a_secret_that_cannot_be_read_fails_the_attempt_naming_its_parameter(make_run):
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    marker = os.path.join(str(run.tmp), "ran")
    run.put_spec([sys.executable, "-c", "open(%r, 'w').write('ran')" % marker], secrets={"HF_TOKEN": "missing"})
    p = run.agent(run.env(aemm, AWS_ENDPOINT_URL_SSM=run.moto))
    status = run.status()
    assert status["state"] == "failed", run.output(p)
    assert "secret HF_TOKEN" in status["reason"] and "/chronos-training/dev/secrets/missing" in status["reason"]
    assert "ParameterNotFound" in status["reason"]
    assert not os.path.exists(marker)  # the command never started
    assert len(run.poweroffs()) == 1


def test_a_spec_whose_secrets_are_not_names_is_refused(make_run):
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    run.put_spec(["true"], secrets={"WANDB_API_KEY": "../../other/secrets/x"})
    p = run.agent(run.env(aemm, AWS_ENDPOINT_URL_SSM=run.moto))
    status = run.status()
    assert status["state"] == "failed", run.output(p)
    assert status["reason"] == "bad run spec: secrets must map variable names to parameter names"
