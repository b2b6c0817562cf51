"use strict";
var __defProp = Object.defineProperty;
var __getOwnPropDesc = Object.getOwnPropertyDescriptor;
var __getOwnPropNames = Object.getOwnPropertyNames;
var __hasOwnProp = Object.prototype.hasOwnProperty;
var __export = (target, all) => {
  for (var name in all)
    __defProp(target, name, { get: all[name], enumerable: true });
};
var __copyProps = (to, from, except, desc) => {
  if (from && typeof from === "object" || typeof from === "function") {
    for (let key of __getOwnPropNames(from))
      if (!__hasOwnProp.call(to, key) && key !== except)
        __defProp(to, key, { get: () => from[key], enumerable: !(desc = __getOwnPropDesc(from, key)) || desc.enumerable });
  }
  return to;
};
var __toCommonJS = (mod) => __copyProps(__defProp({}, "__esModule", { value: true }), mod);

// src/training-run-reaper.lambda.ts
var training_run_reaper_lambda_exports = {};
__export(training_run_reaper_lambda_exports, {
  REAPED_STATES: () => REAPED_STATES,
  TERMINATE_BATCH: () => TERMINATE_BATCH,
  configFromEnvironment: () => configFromEnvironment,
  handler: () => handler,
  lifetimeOf: () => lifetimeOf,
  reap: () => reap
});
module.exports = __toCommonJS(training_run_reaper_lambda_exports);
var import_client_ec2 = require("@aws-sdk/client-ec2");
var REAPED_STATES = ["pending", "running", "stopping", "stopped"];
var TERMINATE_BATCH = 50;
function configFromEnvironment(env) {
  const filterTags = JSON.parse(required(env, "FILTER_TAGS"));
  if (typeof filterTags !== "object" || filterTags === null || Object.keys(filterTags).length === 0) {
    throw new Error("FILTER_TAGS must be a non-empty JSON object of tag keys and values");
  }
  const defaultLifetimeSeconds = Number(required(env, "DEFAULT_LIFETIME_SECONDS"));
  if (!Number.isFinite(defaultLifetimeSeconds) || defaultLifetimeSeconds <= 0) {
    throw new Error(`DEFAULT_LIFETIME_SECONDS must be a positive number, got '${env.DEFAULT_LIFETIME_SECONDS}'`);
  }
  return {
    filterTags,
    lifetimeTagKey: required(env, "LIFETIME_TAG_KEY"),
    defaultLifetimeSeconds,
    dryRun: env.DRY_RUN === "true"
  };
}
function required(env, name) {
  const value = env[name];
  if (value === void 0 || value === "") {
    throw new Error(`environment variable ${name} is not set`);
  }
  return value;
}
function lifetimeOf(instance, config) {
  const tag = instance.Tags?.find((t) => t.Key === config.lifetimeTagKey)?.Value;
  if (tag === void 0) {
    return { lifetimeSeconds: config.defaultLifetimeSeconds, lifetimeFrom: "default (tag missing)" };
  }
  const trimmed = tag.trim();
  const hours = Number(trimmed);
  if (!/^\d+(\.\d+)?$/.test(trimmed) || !(hours > 0)) {
    return { lifetimeSeconds: config.defaultLifetimeSeconds, lifetimeFrom: "default (tag malformed)" };
  }
  return { lifetimeSeconds: hours * 3600, lifetimeFrom: "tag" };
}
async function reap(client, config, now = /* @__PURE__ */ new Date()) {
  const filters = [
    ...Object.entries(config.filterTags).map(([key, value]) => ({ Name: `tag:${key}`, Values: [value] })),
    { Name: "instance-state-name", Values: REAPED_STATES }
  ];
  let examined = 0;
  const expired = [];
  for await (const page of (0, import_client_ec2.paginateDescribeInstances)({ client }, { Filters: filters })) {
    for (const instance of (page.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
      examined++;
      if (!instance.InstanceId || !instance.LaunchTime) {
        continue;
      }
      const ageSeconds = (now.getTime() - new Date(instance.LaunchTime).getTime()) / 1e3;
      const lifetime = lifetimeOf(instance, config);
      if (ageSeconds > lifetime.lifetimeSeconds) {
        expired.push({ instanceId: instance.InstanceId, state: instance.State?.Name ?? "unknown", ageSeconds, ...lifetime });
      }
    }
  }
  const terminated = [];
  const failures = [];
  for (let i = 0; i < expired.length; i += TERMINATE_BATCH) {
    const ids = expired.slice(i, i + TERMINATE_BATCH).map((e) => e.instanceId);
    try {
      const response = await client.send(new import_client_ec2.TerminateInstancesCommand({ InstanceIds: ids, DryRun: config.dryRun }));
      terminated.push(...(response.TerminatingInstances ?? []).map((t) => t.InstanceId).filter(Boolean));
    } catch (error) {
      if (config.dryRun && error?.name === "DryRunOperation") {
        terminated.push(...ids);
      } else {
        failures.push(`${ids.join(",")}: ${error?.name ?? "Error"}: ${error?.message ?? error}`);
      }
    }
  }
  const result = { dryRun: config.dryRun, examined, expired, terminated };
  console.log(JSON.stringify(result));
  if (failures.length > 0) {
    throw new Error(`TerminateInstances failed for ${failures.length} batch(es): ${failures.join("; ")}`);
  }
  return result;
}
var ec2 = new import_client_ec2.EC2Client({});
async function handler() {
  return reap(ec2, configFromEnvironment(process.env));
}
// Annotate the CommonJS export names for ESM import in node:
0 && (module.exports = {
  REAPED_STATES,
  TERMINATE_BATCH,
  configFromEnvironment,
  handler,
  lifetimeOf,
  reap
});
