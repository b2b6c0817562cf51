"""chronos-training: launch and follow training runs on a Chronos foundation, from the command line or Python.

    import chronos_training
    run = chronos_training.launch(env="dev", command=["python", "train.py"], instance_types=["g5.xlarge"])
    run.wait()

The names below are imported on first use, so that `import chronos_training` (and the CLI's start) stays fast.
"""
from typing import Any

__all__ = ["launch", "launch_file", "set_secret", "resume", "runs", "Run", "Clients", "ChronosError"]


def __getattr__(name: str) -> Any:
    if name in ("launch", "launch_file", "set_secret", "resume", "runs", "Run"):
        from . import api
        return getattr(api, name)
    if name == "Clients":
        from .clients import Clients
        return Clients
    if name == "ChronosError":
        from .errors import ChronosError
        return ChronosError
    if name == "__version__":
        from .commands import package_version
        return package_version()
    raise AttributeError(name)
