"""The part of gitignore's semantics the launcher needs to choose the files of a working directory
(https://git-scm.com/docs/gitignore, "PATTERN FORMAT"): blank lines and `#` comments, `\\` escapes, trailing spaces,
`!` negation, a trailing `/` for directories only, a `/` at the start or in the middle anchoring the pattern to the
.gitignore's directory, `*`, `?`, `[...]` and `**`. The last matching pattern wins; deeper .gitignore files come after
shallower ones. As in git, a file under an excluded directory cannot be re-included (the walk does not enter it)."""
import re
from dataclasses import dataclass
from typing import List, Pattern, Sequence


@dataclass(frozen=True)
class IgnoreRule:
    """One pattern of a .gitignore file."""

    #: The directory of the .gitignore, relative to the root, with `/` separators ('' for the root).
    base: str
    negate: bool
    dir_only: bool
    regex: Pattern[str]
    #: The line as written, for messages.
    source: str


def _escape(c: str) -> str:
    return "\\" + c if c in ".*+?^${}()|[]\\/" else c


def _glob_to_regex(glob: str) -> str:
    out = ""
    i = 0
    n = len(glob)
    while i < n:
        c = glob[i]
        if c == "*":
            if i + 1 < n and glob[i + 1] == "*":
                at_start = i == 0 or glob[i - 1] == "/"
                at_end = i + 2 == n
                if at_start and i + 2 < n and glob[i + 2] == "/":
                    out += "(?:.*/)?"  # `**/`: zero or more directories
                    i += 3
                    continue
                if at_start and at_end:
                    out += ".*"  # `/**` at the end: everything inside
                    i += 2
                    continue
                out += "[^/]*"  # another `**` is a plain `*`
                i += 2
                continue
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "\\" and i + 1 < n:
            i += 1
            out += _escape(glob[i])
        elif c == "[":
            end = glob.find("]", i + 2)
            if end < 0:
                out += "\\["
                i += 1
                continue
            cls = glob[i + 1:end]
            if cls.startswith("!"):
                cls = "^" + cls[1:]
            out += "[%s]" % cls.replace("\\", "\\\\")
            i = end
        else:
            out += _escape(c)
        i += 1
    return out


def parse_gitignore(text: str, base: str = "") -> List[IgnoreRule]:
    """Parses the text of a .gitignore found in `base` (relative to the root)."""
    rules: List[IgnoreRule] = []
    for raw in text.split("\n"):
        line = raw[:-1] if raw.endswith("\r") else raw
        if line == "" or line.startswith("#"):
            continue
        # Trailing spaces are ignored unless escaped with a backslash.
        line = re.sub(r"(?<!\\)\s+$", "", line)
        line = re.sub(r"\\(\s)$", r"\1", line)
        if line == "":
            continue
        negate = False
        if line.startswith("!"):
            negate = True
            line = line[1:]
        elif line.startswith("\\!") or line.startswith("\\#"):
            line = line[1:]
        dir_only = False
        if line.endswith("/"):
            dir_only = True
            line = line[:-1]
        if line == "":
            continue
        anchored = "/" in line
        if line.startswith("/"):
            line = line[1:]
        body = _glob_to_regex(line)
        regex = re.compile(("^%s$" % body) if anchored else ("^(?:.*/)?%s$" % body))
        rules.append(IgnoreRule(base, negate, dir_only, regex, raw))
    return rules


def is_ignored(rules: Sequence[IgnoreRule], rel_path: str, is_dir: bool) -> bool:
    """Whether `rel_path` (relative to the root, `/` separators) is ignored by `rules` (in the order of their files,
    shallower first): the last rule that matches decides."""
    ignored = False
    for rule in rules:
        if rule.dir_only and not is_dir:
            continue
        if rule.base == "":
            rel = rel_path
        elif rel_path.startswith(rule.base + "/"):
            rel = rel_path[len(rule.base) + 1:]
        else:
            continue
        if rule.regex.search(rel):
            ignored = not rule.negate
    return ignored
