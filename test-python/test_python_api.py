"""The generated Python package reads naturally: snake_case members, keyword
props, docstrings, metadata."""
import importlib.metadata
import inspect
import re
from pathlib import Path

import pytest

import chronos_training_infra as lib

CONSTRUCTS = ["ChronosTrainingFoundation", "ChronosTrainingStack", "TrainingBucket", "TrainingEgressSecurityGroup",
              "TrainingInstanceRole", "TrainingNetwork", "TrainingLaunchTemplate", "TrainingRunReaper", "TrainingBudget",
              "TrainingBatchQueue", "TrainingRunKeeper", "RunNotifications"]
CLASSES = ["FoundationExports", "ZeroIdleCostChecker"]
INTERFACES = ["IChronosTrainingFoundation"]
STRUCTS = ["ChronosTrainingFoundationImportOptions", "ChronosTrainingFoundationProps", "ChronosTrainingStackProps",
           "TrainingBucketOptions", "TrainingBucketProps", "TrainingEgressSecurityGroupOptions",
           "TrainingEgressSecurityGroupProps", "TrainingInstanceRoleOptions", "TrainingInstanceRoleProps",
           "TrainingNetworkOptions", "TrainingNetworkProps", "ZeroIdleCostCheckerProps",
           "TrainingLaunchTemplateOptions", "TrainingLaunchTemplateProps", "TrainingRunReaperOptions", "TrainingRunReaperProps",
           "TrainingBudgetOptions", "TrainingBudgetProps", "BudgetLaunchers", "S3EndpointRestrictionOptions",
           "TrainingBatchQueueOptions", "TrainingBatchQueueProps", "TrainingBatchQueueMultiNodeOptions",
           "TrainingRunKeeperOptions", "TrainingRunKeeperProps", "RunNotificationsOptions", "RunNotificationsProps"]
SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


def public_properties(cls):
    return {n: v for n, v in inspect.getmembers(cls) if isinstance(v, property) and not n.startswith("_")
            and n not in {"node"}}


def own_properties(cls):
    """Properties declared by this library's class itself (not inherited from aws_cdk/constructs)."""
    return {n: v for n, v in vars(cls).items() if isinstance(v, property) and not n.startswith("_")}


def test_exported_names():
    assert sorted(n for n in dir(lib) if not n.startswith("_")) == sorted(CONSTRUCTS + STRUCTS + CLASSES + INTERFACES)


@pytest.mark.parametrize("name,members", [
    ("ChronosTrainingFoundation", {"environment_name", "cost_center", "vpc", "public_subnets",
                                   "bucket", "role", "instance_profile", "security_group", "launch_template",
                                   "connections", "export_names", "parameter_names", "placement_group", "network",
                                   "training_bucket", "run_reaper", "budget", "batch_queue", "batch_job_queue",
                                   "batch_job_definition", "batch_multi_node_job_queue", "batch_multi_node_job_definition"}),
    ("ChronosTrainingStack", {"foundation"}),
    ("TrainingNetwork", {"vpc", "public_subnets", "s3_endpoint"}),
    ("TrainingBucket", {"bucket", "environment_name", "log_retention"}),
    ("TrainingInstanceRole", {"role", "instance_profile", "environment_name", "grant_principal"}),
    ("TrainingEgressSecurityGroup", {"security_group", "connections", "environment_name"}),
])
def test_snake_case_members(name, members):
    cls = getattr(lib, name)
    own = set(own_properties(cls))
    assert members <= own, f"{name} lacks {sorted(members - own)}"
    assert all(SNAKE.match(n) for n in own), f"{name} has non-snake_case members {sorted(own)}"
    camel = {"publicSubnets", "s3Endpoint", "runReaper", "instanceProfile", "securityGroup", "costCenter",
             "environmentName", "exportNames", "grantReadShared"}
    assert not camel & set(dir(cls))


@pytest.mark.parametrize("name,keywords", [
    ("ChronosTrainingFoundation", {"environment_name", "cost_center", "network_props", "bucket_props",
                                   "instance_role_props", "flow_logs", "security_group_props",
                                   "cluster_placement_group", "ssm_parameters", "vpc", "vpc_has_s3_endpoint",
                                   "bucket", "launch_template", "launch_template_props", "run_reaper", "run_reaper_props",
                                   "max_run_lifetime", "budget", "s3_endpoint_restriction",
                                   "s3_endpoint_restriction_props", "regional_names", "batch"}),
    ("ChronosTrainingStack", {"environment_name", "cost_center", "env", "description", "stack_name",
                              "network_props"}),
    ("TrainingNetwork", {"vpc_cidr", "subnet_cidr_mask", "availability_zones", "max_azs", "flow_log_destination"}),
    ("TrainingBucket", {"environment_name", "log_retention", "artifact_transition", "artifact_expiration",
                        "removal_policy"}),
    ("TrainingInstanceRole", {"bucket", "environment_name", "terminate_self_only", "session_manager"}),
    ("TrainingEgressSecurityGroup", {"vpc", "environment_name", "allow_http", "allow_traffic_within_group"}),
])
def test_keyword_props(name, keywords):
    params = inspect.signature(getattr(lib, name).__init__).parameters
    assert list(params)[:3] == ["self", "scope", "id"]
    kw = {n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert keywords <= kw, f"{name} lacks keyword props {sorted(keywords - kw)}"
    assert all(SNAKE.match(n) for n in kw)


def test_required_props_are_required_keywords():
    for name, required in [("TrainingInstanceRole", "bucket"), ("TrainingInstanceRole", "environment_name"),
                           ("TrainingEgressSecurityGroup", "vpc"), ("TrainingEgressSecurityGroup", "environment_name"),
                           ("TrainingBucket", "environment_name")]:
        p = inspect.signature(getattr(lib, name).__init__).parameters[required]
        assert p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty


def test_static_methods_and_constants_are_pythonic():
    assert lib.ChronosTrainingStack.stack_name_for("stage") == "ChronosTraining-stage-Stack"
    assert not hasattr(lib.ChronosTrainingStack, "stackNameFor")
    assert lib.FoundationExports.export_name("dev", lib.FoundationExports.VPC_ID) == "ChronosTraining-dev-VPCId"
    assert lib.FoundationExports.export_names("dev")[0] == "ChronosTraining-dev-VPCId"
    assert not hasattr(lib.FoundationExports, "exportNames")
    assert lib.FoundationExports.parameter_name("dev", lib.FoundationExports.VPC_ID) == "/chronos-training/dev/VPCId"
    assert not hasattr(lib.ChronosTrainingFoundation, "fromEnvironment")


def test_from_environment_in_python():
    from aws_cdk import App, Stack
    stack = Stack(App(), "Consumer")
    training = lib.ChronosTrainingFoundation.from_environment(stack, "Training", "dev", availability_zone_count=2)
    assert training.environment_name == "dev"
    assert len(training.public_subnets) == 2
    assert callable(training.grant_read_shared)


def _doc_text(obj):
    """A docstring without jsii's stability marks."""
    doc = inspect.getdoc(obj) or ""
    return re.sub(r"\(experimental\)|:stability: experimental", "", doc).strip()


@pytest.mark.parametrize("name", CONSTRUCTS)
def test_construct_docstrings(name):
    assert len(_doc_text(getattr(lib, name))) > 20, f"{name} has no docstring"


@pytest.mark.parametrize("name", STRUCTS)
def test_struct_docstrings(name):
    # jsii-pacmak puts a struct's description and its :param list on __init__ (the class docstring is empty);
    # help() and IDEs show it there.
    init_doc = _doc_text(getattr(lib, name).__init__)
    assert len(init_doc) > 20, f"{name}.__init__ has no docstring"
    params = inspect.signature(getattr(lib, name).__init__).parameters
    undocumented = [p for p in params if p != "self" and f":param {p}:" not in init_doc]
    assert not undocumented, f"{name}.__init__ does not document {undocumented}"


@pytest.mark.parametrize("name", CONSTRUCTS + STRUCTS)
def test_member_docstrings(name):
    cls = getattr(lib, name)
    missing = [n for n, p in own_properties(cls).items() if len(_doc_text(p)) < 5]
    assert not missing, f"{name} members without docstrings: {missing}"


def test_props_docstrings_document_defaults():
    doc = inspect.getdoc(lib.ChronosTrainingFoundationProps.environment_name)
    assert ":default:" in doc
    init_doc = lib.ChronosTrainingFoundation.__init__.__doc__ or ""
    for kw in ("environment_name", "cost_center", "network_props", "bucket_props"):
        assert f":param {kw}:" in init_doc, f"ChronosTrainingFoundation.__init__ does not document {kw}"


def test_bucket_docstring_names_the_bucket():
    assert "chronos-training-{environment}-{account}-{region}" in inspect.getdoc(lib.TrainingBucket)
    assert lib.ChronosTrainingFoundation.__doc__.strip()


def test_distribution_metadata():
    dist = importlib.metadata.distribution("chronos-training-infra")
    requires = " ".join(dist.requires or [])
    assert "aws-cdk-lib" in requires and "constructs" in requires
    assert (Path(lib.__file__).parent / "py.typed").exists()
    assert dist.metadata["Requires-Python"].startswith(">=3.")


def test_bundled_npm_package_holds_only_the_library():
    # The wheel embeds the npm tarball that jsii-pacmak packed from the project directory:
    # anything .npmignore lets through (a virtualenv, say) ends up in every user's site-packages.
    import tarfile
    bundles = list((Path(lib.__file__).parent / "_jsii").glob("*.tgz"))
    assert len(bundles) == 1, bundles
    with tarfile.open(bundles[0]) as tgz:
        members = [m for m in tgz.getmembers() if m.isfile()]
    # assets/: the run reaper's bundled Lambda handler (one index.js per function, its THIRD-PARTY-NOTICES.txt beside
    # it) and the run keeper's copy of the Python run package (assets/keeper/chronos_training/, its Lambda code); no run
    # agent for the user data (the launcher uploads it with each run: docs/DESIGN.md); CHANGELOG.md: the release notes,
    # for users. No launcher: that is the chronos-training package's (issue 28).
    allowed = re.compile(r"^package/(package\.json|\.jsii|README\.md|API\.md|CHANGELOG\.md|LICENSE|lib/[\w./-]+\.(js|d\.ts)"
                         r"|assets/[\w./-]+/index\.js|assets/[\w./-]+/THIRD-PARTY-NOTICES\.txt"
                         r"|assets/keeper/chronos_training/[\w./-]+\.(py|json|typed))$")
    unexpected = sorted({m.name.split("/")[1] for m in members if not allowed.match(m.name)})
    assert not unexpected, f"{bundles[0].name} holds files outside the library: {unexpected}"
    size = sum(m.size for m in members)
    # About 2 MB: the library, its assembly and docs (the 2 MB launcher bundle went to the chronos-training package).
    assert size < 3_000_000, f"{bundles[0].name} unpacks to {size} bytes"


def test_the_construct_wheel_installs_no_launcher():
    # The launcher is the chronos-training package's console script (issue 28): the construct package has no npm
    # `bin`, from which jsii-pacmak would write a setup.py script (jsii-pacmak, lib/targets/python.ts: package.json `bin` entries become setup.py `scripts`).
    import shutil
    import sys
    dist = importlib.metadata.distribution("chronos-training-infra")
    assert [f for f in (dist.files or []) if f.name == "chronos-training"] == []
    assert not [e for e in dist.entry_points if e.group == "console_scripts"]
    assert shutil.which("chronos-training", path=str(Path(sys.executable).parent)) is None
