"""Whether a cfn-lint run over the scan's templates can be trusted, from its exit code, its findings and its log.

cfn-lint's README, "Exit Codes": the exit code is the bitwise OR of 2 (an error), 4 (a warning) and 8 (an
informational finding), so 0 to 14 and even; anything else (1: a configuration error or a crash, 32: an unsupported
region, a Python traceback) means that it did not lint. With --info it logs "Run scan of template FILE" for each
template it lints (cfnlint/runner/template/runner.py): every template given must be named there.

Usage: python3 cfn_lint_verdict.py RC FINDINGS_FILE LOG_FILE TEMPLATE...   (exit 0: trusted, 1: not; reasons on stderr)
"""
import re
import sys

DOCUMENTED_BITS = 2 | 4 | 8


def problems(rc, findings, log, templates):
    """The reasons not to trust the run (empty: trusted). `findings`: the parseable-format lines."""
    out = []
    if rc < 0 or rc & ~DOCUMENTED_BITS:
        out.append("cfn-lint exited %d, not a documented code (0, or an OR of 2 error, 4 warning, 8 informational): "
                   "it did not lint" % rc)
    elif rc and not findings:
        out.append("cfn-lint exited %d (findings) but printed none" % rc)
    elif findings and not rc:
        out.append("cfn-lint printed %d finding(s) but exited 0" % len(findings))
    scanned = set(re.findall(r"Run scan of template (.+?)\s*$", log, re.M))
    missing = [t for t in templates if t not in scanned]
    if not templates:
        out.append("no templates to lint")
    elif missing:
        out.append("cfn-lint linted %d of the %d templates (not: %s)" % (len(templates) - len(missing), len(templates),
                                                                        ", ".join(missing)))
    return out


def main(argv):
    rc, findings_file, log_file, templates = int(argv[0]), argv[1], argv[2], argv[3:]
    with open(findings_file) as f:
        findings = [line for line in f.read().splitlines() if line.strip()]
    with open(log_file) as f:
        log = f.read()
    found = problems(rc, findings, log, templates)
    for p in found:
        print("scan: " + p, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
