"""The mutation score of the run agent per group of functions, from `mutmut results --all true` (scripts/mutation/run.sh).

Usage: report.py RESULTS GROUP ...   the table, then the survivors (exit 0: a report, not a gate)
       report.py --functions GROUP   the functions of a group, one a line
A mutant is detected when its tests failed (killed) or never finished (timeout); the score is detected / all.
"""
import collections
import re
import sys

# The agent's functions (methods of Agent) in each group: the drain, checkpoint, restore and lifetime code.
GROUPS = {
    "lifetime": ["start", "supervise"],
    "drain": ["on_sigterm", "listen_imds", "listen_control", "kill_command", "finish"],
    "checkpoint": ["scan", "checkpoint", "keep_checkpoints", "keep_logs"],
    "restore": ["restore"],
}
DETECTED = ("killed", "timeout")


def main(argv):
    if argv[:1] == ["--functions"]:
        print("\n".join(GROUPS[argv[1]]))
        return 0
    results, groups = argv[0], argv[1:] or list(GROUPS)
    by_function = collections.defaultdict(collections.Counter)
    survivors = collections.defaultdict(list)
    with open(results) as f:
        for line in f:
            m = re.match(r"\s*agent\.chronos_run_agent\.xǁAgentǁ(\w+?)__mutmut_(\d+): (.+?)\s*$", line)
            if not m or m.group(3) == "not checked":
                continue
            by_function[m.group(1)][m.group(3)] += 1
            if m.group(3) not in DETECTED:
                survivors[m.group(1)].append((int(m.group(2)), "%s: %s" % (line.split(":")[0].strip(), m.group(3))))
    print("%-11s %-18s %7s %8s %8s %8s" % ("group", "function", "mutants", "detected", "survived", "score"))
    total = collections.Counter()
    for g in groups:
        group = collections.Counter()
        for fn in GROUPS[g]:
            c = by_function[fn]
            n, d = sum(c.values()), sum(c[s] for s in DETECTED)
            group.update(n=n, d=d)
            print("%-11s %-18s %7d %8d %8d %7.1f%%" % (g, fn, n, d, n - d, 100.0 * d / n if n else 0))
        total.update(group)
        print("%-11s %-18s %7d %8d %8d %7.1f%%" % (g, "(group)", group["n"], group["d"], group["n"] - group["d"],
                                                   100.0 * group["d"] / group["n"] if group["n"] else 0))
    print("%-11s %-18s %7d %8d %8d %7.1f%%" % ("all", "", total["n"], total["d"], total["n"] - total["d"],
                                               100.0 * total["d"] / total["n"] if total["n"] else 0))
    for g in groups:
        for fn in GROUPS[g]:
            for _, s in sorted(survivors[fn]):
                print("survivor: " + s)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
