"""Figures of the run agent (prints them; not a test), against moto server and amazon-ec2-metadata-mock on loopback:
  1. a spot notice to the last byte of a 100 MiB and a 1 GiB checkpoint in S3 (the file is on disk, not yet uploaded,
     when the notice comes): how long the agent takes to see the notice (it polls IMDS every 5 s) and to upload;
  2. the agent's CPU while a run goes (its CPU time over ~30 s of wall time, default intervals, a command printing
     10 lines a second), as % of one core;
  3. steps lost per interruption (the spot-then-resume scenario, 3): steps run twice after the last checkpoint, and
     steps never run.

Usage (after `bash scripts/test-agent.sh` made the venvs):
  .venv-agent-test/bin/python scripts/agent/bench.py [--skip-1gib]
"""
import calendar
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "test", "agent"))
os.environ.setdefault("AEMM", subprocess.run(["bash", os.path.join(ROOT, "scripts", "agent", "aemm.sh")],
                                             capture_output=True, text=True, check=True).stdout.strip())
from conftest import AGENT_PYTHON, Run, free_port, stop, toy, wait_port  # noqa: E402

# Writes SIZE MiB of random bytes to the checkpoint directory (atomic rename), then waits for SIGTERM and exits.
BIG = """
import os, signal, sys, time
d, n = os.environ["CHRONOS_CHECKPOINT_DIR"], int(sys.argv[1])
with open(os.path.join(d, "model.pt.tmp"), "wb") as f:
    for _ in range(n):
        f.write(os.urandom(1 << 20))
os.replace(os.path.join(d, "model.pt.tmp"), os.path.join(d, "model.pt"))
print("written", flush=True)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
time.sleep(3600)
"""


def agent_log_times(run, pattern):
    for line in run.log(1, "agent").decode().splitlines():
        if re.search(pattern, line):
            t = line.split()[0]
            return calendar.timegm(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S")) + float(t[19:-1] or 0)
    raise AssertionError("no agent log line matches %r" % pattern)


def fresh(tmp, name):
    path = os.path.join(tmp, name)
    os.mkdir(path)
    return path


def spot_to_s3(tmp, moto, mib, notice_after):
    run = Run(fresh(tmp, "spot-%d" % mib), moto, "bench-%d-mib" % mib)
    run.put_spec([sys.executable, "-c", BIG, str(mib)], checkpointIntervalSeconds=3600, stopGraceSeconds=60)
    aemm = run.aemm(run_id=run.run_id, spot_delay=notice_after)
    notice = time.time() + notice_after  # AEMM counts from its start (`aemm` returns once it listens)
    try:
        agent = run.start_agent(run.env(aemm))
        agent.wait(notice_after + 300)
        drain = agent_log_times(run, r"drain: spot")
        done = agent_log_times(run, r"checkpoint \d+ \(final\)")
        size = run.s3.head_object(Bucket=run.bucket, Key=run.get_json(run.manifests()[-1])["files"][0]["key"])
        assert size["ContentLength"] == mib << 20 and run.status()["state"] == "interrupted"
        return drain - notice, done - drain, done - notice
    finally:
        run.close()


def agent_cpu(tmp, moto, seconds=30):
    run = Run(fresh(tmp, "cpu"), moto, "bench-cpu")
    run.put_spec(toy(100000, every=50, pause=0.1))  # the default intervals: checkpoints 60 s, logs 15 s, control 30 s
    for field in ("checkpointIntervalSeconds", "logFlushSeconds", "stopGraceSeconds", "controlPollSeconds"):
        spec = run.get_json("dev/runs/%s/spec.json" % run.run_id)
        spec.pop(field, None)
        run.put_json("dev/runs/%s/spec.json" % run.run_id, spec)
    aemm = run.aemm(run_id=run.run_id)
    try:
        agent = run.start_agent(run.env(aemm))
        time.sleep(5)  # past the start (spec, restore, the command's start)

        def cpu():
            with open("/proc/%d/stat" % agent.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        c0, t0 = cpu(), time.time()
        time.sleep(seconds)
        c1, t1 = cpu(), time.time()
        agent.terminate()
        agent.wait(60)
        return 100 * (c1 - c0) / (t1 - t0), t1 - t0
    finally:
        run.close()


def steps_lost(tmp, moto):
    run = Run(fresh(tmp, "steps"), moto, "bench-steps")
    run.put_spec(toy(300, every=7, pause=0.05))
    try:
        run.agent(run.env(run.aemm(run_id=run.run_id, spot_delay=3)))
        run.agent(run.env(run.aemm(run_id=run.run_id, attempt=2), home="home2"))
        steps = [s for _, s in run.steps()]
        return len(steps) - len(set(steps)), len(set(range(1, 301)) - set(steps)), run.status()["state"]
    finally:
        run.close()


def main():
    skip_big = "--skip-1gib" in sys.argv
    port = free_port()
    moto = subprocess.Popen([os.environ.get("MOTO_SERVER", os.path.join(ROOT, ".venv-moto", "bin", "moto_server")),
                             "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, moto, "moto_server")
        endpoint = "http://127.0.0.1:%d" % port
        with tempfile.TemporaryDirectory() as tmp:
            version = subprocess.run([AGENT_PYTHON, "--version"], capture_output=True, text=True).stdout.strip()
            print("the agent under %s; moto server and ec2-metadata-mock on 127.0.0.1" % version)
            for mib, after in ((100, 8),) + (() if skip_big else ((1024, 25),)):
                seen, upload, total = spot_to_s3(tmp, endpoint, mib, after)
                print("spot notice -> %5d MiB checkpoint in S3: %5.1f s (notice seen after %.1f s, upload %.1f s, %.0f MiB/s)"
                      % (mib, total, seen, upload, mib / upload))
            pct, wall = agent_cpu(tmp, endpoint)
            print("agent CPU while a run goes: %.2f %% of one core (%.0f s of wall time, default intervals)" % (pct, wall))
            twice, never, state = steps_lost(tmp, endpoint)
            print("steps lost per interruption: %d run twice, %d never run (attempt 2: %s)" % (twice, never, state))
    finally:
        stop(moto)


if __name__ == "__main__":
    main()
