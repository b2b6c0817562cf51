"""Shared expectations and helpers of the Python tests (jsii is imported lazily, in export_names)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

def export_names(environment: str) -> list[str]:
    """The names of the exports every foundation creates, from the package itself (the jsii kernel is started here,
    on first use)."""
    from chronos_training_infra import FoundationExports
    return FoundationExports.export_names(environment)


def template_exports(template: dict[str, Any]) -> list[str]:
    return [o["Export"]["Name"] for o in template.get("Outputs", {}).values() if "Export" in o]


def resources_of(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template.get("Resources", {}).items() if v["Type"] == type_}


def only(template: dict[str, Any], type_: str) -> dict[str, Any]:
    """The single resource of a type (fails when there are none or several)."""
    found = resources_of(template, type_)
    assert len(found) == 1, f"expected one {type_}, found {len(found)}: {sorted(found)}"
    return next(iter(found.values()))


def bucket_name_join(environment: str, region: str | None = None) -> dict[str, Any]:
    """The bucket name of a stack with an unknown account: in `region`, or environment-agnostic (None)."""
    if region is None:
        return {"Fn::Join": ["", [f"chronos-training-{environment}-", {"Ref": "AWS::AccountId"}, "-", {"Ref": "AWS::Region"}]]}
    return {"Fn::Join": ["", [f"chronos-training-{environment}-", {"Ref": "AWS::AccountId"}, f"-{region}"]]}


def implements(obj: Any, interface: type) -> bool:
    """Whether obj's jsii class declares `interface` (or an interface extending it).

    jsii interfaces are typing Protocols that are not runtime-checkable, so
    `isinstance(obj, IVpc)` raises; jsii records them in `__jsii_ifaces__`.
    """
    for cls in type(obj).__mro__:
        for iface in cls.__dict__.get("__jsii_ifaces__", []):
            if interface in getattr(iface, "__mro__", ()):
                return True
    return False


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def check_foundation_exports(template: dict[str, Any]) -> None:
    """A synthesized stack either holds a foundation, with exactly its exports (and the opt-in placement group's and Batch queue's),
    or imports one by its SSM parameters and exports nothing."""
    from chronos_training_infra import FoundationExports
    exports = template_exports(template)
    if not exports:
        assert "/chronos-training/" in str(template.get("Parameters", {})), "neither a foundation nor a consumer of one"
        return
    environment = next(o["Value"] for o in template["Outputs"].values()
                       if o.get("Export", {}).get("Name", "").endswith("-Environment"))
    expected = export_names(environment)
    assert exports[:len(expected)] == expected
    optional = [FoundationExports.PLACEMENT_GROUP_NAME, FoundationExports.BATCH_JOB_QUEUE_ARN,
                FoundationExports.BATCH_JOB_DEFINITION_ARN, FoundationExports.BATCH_MULTI_NODE_JOB_QUEUE_ARN,
                FoundationExports.BATCH_MULTI_NODE_JOB_DEFINITION_ARN]
    assert set(exports[len(expected):]) <= {FoundationExports.export_name(environment, suffix) for suffix in optional}
