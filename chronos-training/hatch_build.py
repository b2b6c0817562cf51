"""The build hook that ships the run agent in the package: the repository's agent/chronos_run_agent.py (one file,
which the construct package embeds too) goes into the wheel as chronos_training/agent/chronos_run_agent.py, and into
the sdist as agent/chronos_run_agent.py, from where a wheel built from the sdist takes it."""
import os

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class AgentHook(BuildHookInterface):
    def initialize(self, version, build_data):
        for candidate in (os.path.join("..", "agent"), "agent"):  # the repository's, else the sdist's
            path = os.path.join(self.root, candidate, "chronos_run_agent.py")
            if os.path.isfile(path):
                target = "chronos_training/agent" if self.target_name == "wheel" else "agent"
                build_data["force_include"][path] = target + "/chronos_run_agent.py"
                return
        raise FileNotFoundError("the run agent (agent/chronos_run_agent.py) is not beside the package")
