"""moto_server with one emulator fix: a stack update keeps a resource whose type moto cannot update.

moto 5.2.5's CloudFormation update (moto/cloudformation/parsing.py, ResourceMap.update) stores None for a modified
resource whose model has no update_from_cloudformation_json (AWS::Logs::LogGroup among them), so any later Fn::GetAtt
of it fails ("references undefined resource") and the update fails. CloudFormation updates such a resource in place
(a log group's tags or retention), so here the resource moto had is kept. Started by scripts/local/moto.js.
"""
import sys

from moto.cloudformation import parsing
from moto.server import main

_update = parsing.parse_and_update_resource


def _keep_when_not_updatable(logical_id, resource_json, resources_map, account_id, region_name):
    updated = _update(logical_id, resource_json, resources_map, account_id, region_name)
    return resources_map._parsed_resources.get(logical_id) if updated is None else updated


parsing.parse_and_update_resource = _keep_when_not_updatable

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
