"""Printing a run's log chunks as they appear (`{env}/logs/{runId}/{attempt}/{stream}/{chunk}.log`)."""
import re
from typing import Any, Callable, Dict, List, Tuple

from .contract import STREAMS, log_stream_prefix, logs_prefix
from .store import get_text, list_keys


class LogPrinter:
    """Prints the log chunks of a run: stdout to `out`, stderr and the agent's lines to `err` (the agent's prefixed
    `[agent]`). Within an attempt, chunks are printed in the order of their numbers, the streams of one number
    together."""

    def __init__(self, s3: Any, bucket: str, env: str, run_id: str, out: Callable[[str], None],
                 err: Callable[[str], None]) -> None:
        self.s3, self.bucket, self.env, self.run_id = s3, bucket, env, run_id
        self.out, self.err = out, err
        #: The last key printed, per `{attempt}/{stream}`.
        self.last: Dict[str, str] = {}

    def attempts(self) -> List[int]:
        """The attempts that have logs, in order."""
        prefix = logs_prefix(self.env, self.run_id)
        numbers = set()
        for key in list_keys(self.s3, self.bucket, prefix):
            head = key[len(prefix):].split("/")[0]
            if re.match(r"^\d+$", head) and int(head) > 0:
                numbers.add(int(head))
        return sorted(numbers)

    def print_new(self, attempt: int) -> int:
        """Prints the chunks of `attempt` not printed yet; returns how many."""
        found: List[Tuple[int, int, str, str]] = []
        for order, stream in enumerate(STREAMS):
            prefix = log_stream_prefix(self.env, self.run_id, attempt, stream)
            for key in list_keys(self.s3, self.bucket, prefix, self.last.get("%d/%s" % (attempt, stream))):
                name = key[len(prefix):]
                name = name[:-4] if name.endswith(".log") else name
                chunk = int(name) if re.match(r"^\d+$", name) else 0
                found.append((chunk, order, stream, key))
        found.sort(key=lambda f: (f[0], f[1]))
        for _chunk, _order, stream, key in found:
            text = get_text(self.s3, self.bucket, key) or ""
            if stream == "stdout":
                self.out(text)
            elif stream == "stderr":
                self.err(text)
            else:
                lines = text.split("\n")
                tag = "[%s] " % stream  # the agent's lines, and the setup's output (its own stream)
                self.err("\n".join("" if (line == "" and i == len(lines) - 1) else tag + line
                                   for i, line in enumerate(lines)))
            slot = "%d/%s" % (attempt, stream)
            if slot not in self.last or self.last[slot] < key:
                self.last[slot] = key
        return len(found)
