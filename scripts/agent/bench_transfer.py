"""One transfer with the run agent's S3 client (its real `put_file`/`get_file`, parts and files side by side), for
scripts/agent/bench-transfer.sh, which times it beside `aws s3 cp` of the same files against the same S3 on loopback.

Usage: AWS_ENDPOINT_URL_S3=... python bench_transfer.py upload DIR BUCKET PREFIX | download BUCKET PREFIX DIR
"""
import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = importlib.util.spec_from_file_location(
    "agent", os.path.join(ROOT, "chronos-training", "src", "chronos_training", "agent", "chronos_run_agent.py"))
agent = importlib.util.module_from_spec(spec)
spec.loader.exec_module(agent)


def main(a):
    s3 = agent.S3(a[2] if a[0] == "upload" else a[1], "us-east-1", agent.Credentials(agent.Imds()))
    if a[0] == "upload":
        root, prefix = a[1], a[3]
        paths = sorted(os.path.join(d, n) for d, _, names in os.walk(root) for n in names)
        agent.run_pool([lambda p=p: s3.put_file(prefix + os.path.relpath(p, root), p) for p in paths])
    else:
        prefix, root = a[2], a[3]
        agent.run_pool([lambda k=k, n=n: s3.get_file(k, os.path.join(root, k[len(prefix):]), n)
                        for k, n in s3.list(prefix)])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
