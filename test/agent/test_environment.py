"""The run's environment on the instance (docs/RUNS.md, "The setup and its cache", "A container"): the agent as a real
process against moto (S3) and amazon-ec2-metadata-mock (IMDSv2), a real `python -m venv` and `pip install` of a wheel
from a local directory for the setup, and a fake `docker` on PATH that records its calls and forwards signals."""
import json
import os
import re
import shutil
import signal
import sys
import time
import zipfile

from conftest import FIXTURES, expected_stdout, toy

WHEEL = "toywheel-1.0-py3-none-any.whl"


def make_wheel(directory):
    """A minimal pure-Python wheel, toywheel 1.0 (VALUE = 42), that pip installs offline (--no-index)."""
    os.makedirs(directory, exist_ok=True)
    files = {"toywheel/__init__.py": "VALUE = 42\n",
             "toywheel-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: toywheel\nVersion: 1.0\n",
             "toywheel-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files["toywheel-1.0.dist-info/RECORD"] = "".join("%s,,\n" % n for n in list(files) + ["toywheel-1.0.dist-info/RECORD"])
    with zipfile.ZipFile(os.path.join(directory, WHEEL), "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return directory


SETUP = ("echo ran >> \"$SETUP_MARK\" && %s -m venv .venv && .venv/bin/pip install -q --no-index --find-links \"$WHEELS\" "
         "-r requirements.txt" % sys.executable)
COMMAND = ["python", "-c", "import sys, toywheel; print('toywheel', toywheel.VALUE, sys.prefix.endswith('.venv'))"]


def seconds_between(log, first, second):
    """Seconds between the agent log lines that contain `first` and `second` (their timestamps)."""
    def at(what):
        line = next(l for l in log.splitlines() if what in l and l[:4].isdigit())
        return time.mktime(time.strptime(line[:19], "%Y-%m-%dT%H:%M:%S")) + float(line[19:23])
    return at(second) - at(first)


def test_a_second_attempt_restores_the_cached_setup_and_skips_the_install(make_run):
    """Attempt 1 runs the setup (a real venv and pip install), its output the `setup` stream, and caches .venv under
    {env}/cache/setup/{sha256}.tar, keyed by the setup command and requirements.txt; attempt 2 restores it and does not
    run the setup; the command runs in the venv both times. A changed requirements.txt is another key."""
    run = make_run()
    wheels = make_wheel(os.path.join(str(run.tmp), "wheels"))
    mark = os.path.join(str(run.tmp), "setup-ran")
    code = {"requirements.txt": b"toywheel==1.0\n"}
    spec = run.put_spec(COMMAND, setup={"command": SETUP}, env={"WHEELS": wheels, "SETUP_MARK": mark})
    spec["code"] = {"manifestKey": run.put_code(code)}
    run.put_json("dev/runs/%s/spec.json" % run.run_id, spec)
    figures, aemm = [], run.aemm(run_id=run.run_id)
    for attempt in (1, 2):
        p = run.agent(run.env(aemm, CHRONOS_ATTEMPT=str(attempt)), timeout=180)
        assert p.returncode == 0 and run.status()["state"] == "succeeded", (run.status(), run.output(p))
        assert run.log(attempt, "stdout") == b"toywheel 42 True\n"
        log = run.output(p)  # the agent's lines, the cache upload's (after the logs' last flush) included
        if attempt == 1:
            assert "setup: " + SETUP in log and "setup: done" in log and "setup: cached .venv" in log, log
            assert b"ran" not in run.log(1, "setup")  # the marker goes to a file; pip is quiet: nothing else
            figures.append(seconds_between(log, "no whole checkpoint to restore", "setup: done"))
        else:
            assert re.search(r"setup: restored \d+ entries from the cache dev/cache/setup/[0-9a-f]{64}\.tar; the setup is skipped", log), log
            assert "setup: done" not in log and run.log(2, "setup") == b""
            figures.append(seconds_between(log, "no whole checkpoint to restore", "the setup is skipped"))
    assert open(mark).read() == "ran\n"  # once, in attempt 1
    (key,) = run.keys("dev/cache/setup/")
    # Another requirements.txt: another key, so the setup runs again.
    spec["code"] = {"manifestKey": run.put_code({"requirements.txt": b"toywheel==1.0\n# changed\n"})}
    run.put_json("dev/runs/%s/spec.json" % run.run_id, spec)
    p = run.agent(run.env(aemm, CHRONOS_ATTEMPT="3"), timeout=180)
    assert p.returncode == 0 and run.status()["state"] == "succeeded", run.output(p)
    assert open(mark).read() == "ran\nran\n"
    assert len(run.keys("dev/cache/setup/")) == 2 and key in run.keys("dev/cache/setup/")
    print("the environment ready: %.2f s with the setup (venv + pip install), %.2f s from the cache" % tuple(figures))


def test_a_failed_setup_fails_the_attempt_with_its_exit_code_and_the_command_never_runs(make_run):
    """The setup is never retried: its exit code fails the attempt (`setup failed (exit 7)`, exitCode 7), its output
    is in the `setup` stream, nothing is cached, the command does not run, the instance powers off."""
    run = make_run()
    run.put_spec(toy(5), setup={"command": "echo cannot install >&2; exit 7"})
    p = run.agent(run.env(run.aemm(run_id=run.run_id)), timeout=60)
    assert p.returncode == 0
    status = run.status()
    assert status["state"] == "failed" and status["reason"] == "setup failed (exit 7)" and status["exitCode"] == 7, status
    assert run.log(1, "setup") == b"cannot install\n"
    assert run.steps() == [] and run.keys("dev/cache/") == []
    assert len(run.poweroffs()) == 1


def test_a_bad_setup_field_fails_the_attempt_naming_it(make_run):
    run = make_run()
    run.put_spec(toy(5), setup={"command": ""})
    p = run.agent(run.env(run.aemm(run_id=run.run_id)), timeout=60)
    assert p.returncode == 0
    assert run.status()["reason"].startswith("bad run spec: setup.command must be a non-empty string"), run.status()
    assert run.steps() == []


def fake_docker_path(run):
    bindir = os.path.join(str(run.tmp), "docker-bin")
    os.makedirs(bindir, exist_ok=True)
    shutil.copy(os.path.join(FIXTURES, "fake_docker.py"), os.path.join(bindir, "docker"))
    os.chmod(os.path.join(bindir, "docker"), 0o755)
    return bindir + os.pathsep + os.environ["PATH"]


def docker_calls(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_a_container_gets_the_mounts_the_environment_by_name_and_a_spot_notices_sigterm(make_run):
    """`container`: the command runs through `docker run --rm --init --network host`, the code, checkpoint, artifact
    and runtime directories mounted at the same paths, the working directory the code's, each variable of the command
    passed by name (-e NAME; its value only in the environment, never in argv), no --gpus without nvidia-smi. A spot
    notice: SIGTERM reaches the script inside (the fake docker forwards it as docker's signal proxy does), its
    checkpoint is saved, the attempt is `interrupted`; the container is removed after."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id, attempt=1, spot_delay=3, notice_time=time.time() + 60)
    secret_like = "value-that-must-not-be-in-argv"
    run.put_spec(toy(400, every=7, pause=0.05), checkpointIntervalSeconds=3, container={"image": "nvcr.io/nvidia/pytorch:24.08-py3"},
                 env={"MY_SETTING": secret_like})
    calls = os.path.join(str(run.tmp), "docker.jsonl")
    agent = run.start_agent(run.env(aemm, PATH=fake_docker_path(run), FAKE_DOCKER_LOG=calls))
    deadline = time.time() + 60
    while time.time() < deadline and "left for EC2 to reclaim" not in run.output(agent):
        time.sleep(0.5)
    agent.send_signal(signal.SIGTERM)  # EC2 reclaims the instance
    agent.wait(30)
    status = run.status()
    assert status["state"] == "interrupted" and status["exitCode"] == 143, (status, run.output(agent))
    assert b"saved on SIGTERM" in run.log(1, "stdout")
    assert run.checkpoint_state(status["lastCheckpoint"]["manifestKey"]) == run.steps()[-1][1]
    docker = docker_calls(calls)
    first = docker[0]["argv"]
    home = os.path.join(str(run.tmp), "home", "work")
    assert first[:8] == ["run", "--rm", "--init", "--name", "chronos-%s-1" % run.run_id, "--network", "host", "-w"]
    assert first[8] == os.path.join(home, "code") and "--gpus" not in first
    for d in ("code", "checkpoints", "artifacts", "runtime"):
        assert "%s:%s" % (os.path.join(home, d), os.path.join(home, d)) in first
    assert docker[0]["image"] == "nvcr.io/nvidia/pytorch:24.08-py3"
    assert docker[0]["env"]["MY_SETTING"] == secret_like and docker[0]["env"]["CHRONOS_ATTEMPT"] == "1"
    assert docker[0]["env"]["CHRONOS_CHECKPOINT_DIR"] == os.path.join(home, "checkpoints")
    assert not any(secret_like in a for a in first)
    assert {"AWS_ACCESS_KEY_ID", "PATH"}.isdisjoint(docker[0]["env"])  # the agent's own variables stay outside
    assert docker[-1]["argv"] == ["rm", "-f", "chronos-%s-1" % run.run_id]


def test_a_container_with_gpus_and_its_exit_code(make_run):
    """With nvidia-smi on the instance, `--gpus all`; the command's exit code through docker is the attempt's."""
    run = make_run()
    run.put_spec(toy(3, pause=0.01, exit_code=3), container={"image": "python:3.12"})
    calls = os.path.join(str(run.tmp), "docker.jsonl")
    path = fake_docker_path(run)
    smi = os.path.join(path.split(os.pathsep)[0], "nvidia-smi")
    with open(smi, "w") as f:
        f.write("#!/bin/sh\nexit 0\n")
    os.chmod(smi, 0o755)
    p = run.agent(run.env(run.aemm(run_id=run.run_id), PATH=path, FAKE_DOCKER_LOG=calls), timeout=60)
    assert p.returncode == 0
    assert run.status()["state"] == "failed" and run.status()["exitCode"] == 3, run.status()
    argv = docker_calls(calls)[0]["argv"]
    assert argv[argv.index("--gpus") + 1] == "all"
    assert run.log(1, "stdout") == expected_stdout(1, 3)


def test_python_is_the_images_framework_environment_unless_the_code_has_a_venv(make_run):
    """The default image, the PyTorch DLAMI, has PyTorch in /opt/pytorch (release notes: python_location
    /opt/pytorch/bin/python): the command's `python` is that environment's (VIRTUAL_ENV set, its bin first on PATH);
    a `.venv` of the code directory (the setup's) wins over it. The status records the attempt's AMI (IMDS ami-id)."""
    run = make_run()
    framework = os.path.join(str(run.tmp), "opt-pytorch")
    os.makedirs(os.path.join(framework, "bin"))
    os.symlink(sys.executable, os.path.join(framework, "bin", "python"))
    aemm = run.aemm(run_id=run.run_id)
    command = ["sh", "-c", "command -v python; echo \"$VIRTUAL_ENV\""]
    run.put_spec(command)
    p = run.agent(run.env(aemm, CHRONOS_FRAMEWORK_ENV=framework), timeout=60)
    assert p.returncode == 0 and run.status()["state"] == "succeeded", run.output(p)
    assert run.log(1, "stdout").decode() == "%s/bin/python\n%s\n" % (framework, framework)
    assert re.match(r"^ami-[0-9a-f]+$", run.status()["imageId"]), run.status()
    run.put_spec(command, setup={"command": "%s -m venv .venv" % sys.executable})
    p = run.agent(run.env(aemm, CHRONOS_FRAMEWORK_ENV=framework, CHRONOS_ATTEMPT="2"), timeout=60)
    venv = os.path.join(str(run.tmp), "home", "work", "code", ".venv")
    assert run.log(2, "stdout").decode() == "%s/bin/python\n%s\n" % (venv, venv), run.output(p)


def test_an_ecr_image_logs_in_with_the_instance_roles_token_through_stdin(make_run):
    """An ECR image: the agent gets a token with ecr:GetAuthorizationToken (SigV4, JSON 1.1, moto server here; ECR API
    Reference, GetAuthorizationToken: authorizationData[].authorizationToken is base64 of `user:password`, proxyEndpoint
    the registry URL) and runs `docker login --username AWS --password-stdin ENDPOINT`: the password on stdin, never
    in argv; then `docker run` of the image."""
    run = make_run()
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1"
    run.put_spec(toy(3, pause=0.01), container={"image": image})
    calls = os.path.join(str(run.tmp), "docker.jsonl")
    p = run.agent(run.env(run.aemm(run_id=run.run_id), PATH=fake_docker_path(run), FAKE_DOCKER_LOG=calls,
                          AWS_ENDPOINT_URL_ECR=run.moto), timeout=60)
    assert p.returncode == 0 and run.status()["state"] == "succeeded", (run.status(), run.output(p))
    login, docker_run = docker_calls(calls)[:2]
    assert login["argv"][:4] == ["login", "--username", "AWS", "--password-stdin"] and len(login["argv"]) == 5
    assert login["argv"][4].startswith("https://") and login["password"]
    assert not any(login["password"] in a for a in login["argv"] + docker_run["argv"])
    assert docker_run["image"] == image


def test_a_spot_notice_during_the_setup_interrupts_the_attempt_and_stops_the_setup(make_run):
    """The agent polls IMDS while the setup runs: a spot notice stops the setup (its process group) and ends the
    attempt `interrupted`, saying so; the command never starts; the instance is left for EC2 to reclaim."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id, spot_delay=2, notice_time=time.time() + 60)
    pid_file = os.path.join(str(run.tmp), "setup.pid")
    run.put_spec(toy(5), setup={"command": "echo $$ > %s; exec sleep 120" % pid_file})
    agent = run.start_agent(run.env(aemm))
    deadline = time.time() + 60
    while time.time() < deadline and "left for EC2 to reclaim" not in run.output(agent):
        time.sleep(0.5)
    status = run.status()
    assert status["state"] == "interrupted" and status["reason"].startswith("spot interruption notice"), status
    assert status["reason"].endswith("during the setup"), status
    pid = int(open(pid_file).read())
    assert not os.path.exists("/proc/%d" % pid) or open("/proc/%d/stat" % pid).read().split()[2] == "Z"
    assert run.steps() == [] and run.poweroffs() == []
    agent.send_signal(signal.SIGTERM)  # EC2 reclaims the instance
    agent.wait(30)
