import { DescribeInstancesCommand, Instance } from '@aws-sdk/client-ec2';
import { Clients, Io } from './context';
import { tagOf } from './runs';

/** How an attempt's instance ended, from its state and `StateReason` in EC2. */
export interface InstanceEnd {
  readonly instanceId: string;
  /** `terminated`, `shutting-down` or `stopped`. */
  readonly state: string;
  /** `StateReason.Code`, if EC2 gave one. */
  readonly code?: string;
  /** Whether the run goes on with a next attempt: only when EC2 reclaimed a spot instance. */
  readonly resumable: boolean;
  /** Whether the run reaper ended it (it outlived its `MaxLifetimeHours` tag). */
  readonly reaper: boolean;
  /** The end, in words. */
  readonly reason: string;
}

const ENDED = new Set(['terminated', 'shutting-down', 'stopped', 'stopping']);

/**
 * The time of the last state change, from `StateTransitionReason`, e.g. `User initiated (2026-12-01 12:00:00 GMT)`
 * (EC2 API Reference, Instance, StateTransitionReason); undefined when it holds none.
 */
function transitionTime(instance: Instance): number | undefined {
  const m = /\((\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) (GMT|UTC)\)/.exec(instance.StateTransitionReason ?? '');
  return m ? Date.parse(`${m[1]}T${m[2]}Z`) : undefined;
}

/**
 * How an instance ended, or undefined while it has not. EC2 API Reference, "StateReason":
 * `Server.SpotInstanceTermination` / `Server.SpotInstanceShutdown` (EC2 reclaimed the spot instance: the run goes on),
 * `Client.UserInitiatedShutdown` ("shut down using the Amazon EC2 API": a user, `stop --now`, or the run reaper when the
 * instance outlived its `MaxLifetimeHours` tag), `Client.InstanceInitiatedShutdown` ("shut down from the operating
 * system"), `Client.InternalError` ("a client error caused the instance to terminate during launch"). Every end but
 * a spot reclaim ends the run.
 */
export function endOf(instance: Instance, now: Date): InstanceEnd | undefined {
  const state = instance.State?.Name ?? '';
  if (!ENDED.has(state)) return undefined;
  const instanceId = instance.InstanceId ?? '?';
  const code = instance.StateReason?.Code;
  const message = instance.StateReason?.Message ?? '';
  const base = { instanceId, state, ...(code ? { code } : {}), resumable: false, reaper: false };
  if (code?.startsWith('Server.SpotInstance')) {
    return { ...base, resumable: true, reason: `EC2 reclaimed the spot instance (${code})` };
  }
  if (code === 'Client.UserInitiatedShutdown') {
    const tag = Number(tagOf(instance, 'MaxLifetimeHours'));
    const launched = instance.LaunchTime ? new Date(instance.LaunchTime).getTime() : undefined;
    const endedAt = transitionTime(instance) ?? now.getTime();
    if (tag > 0 && launched !== undefined && endedAt - launched >= tag * 3600_000) {
      return {
        ...base,
        reaper: true,
        reason: `the run reaper terminated it (${code}): it outlived its MaxLifetimeHours tag of ${tag} h, counted from its launch`,
      };
    }
    return { ...base, reason: `it was terminated or stopped through the EC2 API or console (${code}): by a user, or chronos-training stop --now` };
  }
  if (code === 'Client.InstanceInitiatedShutdown') {
    return { ...base, reason: `it shut down from its own operating system (${code}) before the agent wrote a final status` };
  }
  if (code === 'Client.InternalError') {
    return {
      ...base,
      reason: `EC2 ended it during launch (${code}${message ? `: ${message}` : ''}); a common cause is a KMS key of its EBS ` +
        'volumes (the account\'s default EBS key, or the template\'s) that the launch may not use (kms:CreateGrant, kms:Decrypt)',
    };
  }
  return { ...base, reason: `it is ${state} (${code ? `${code}${message ? `: ${message}` : ''}` : 'EC2 gave no StateReason'})` };
}

/**
 * Whether an attempt's instance has ended while its status still says `pending` or `running`: checked at most
 * every WATCHDOG_SECONDS, and reported only when it stays so for a further WATCHDOG_SECONDS (the agent writes its
 * final status before it powers off, so a short overlap is normal). An attempt whose status says `interrupted` is
 * over whatever its instance does (after a spot drain the agent leaves it for EC2 to reclaim): it is not watched.
 */
export class InstanceWatchdog {
  private lastCheck = 0;
  private endedSince = new Map<string, number>();

  constructor(private readonly clients: Clients, private readonly io: Io) {}

  public async gone(instanceId: string, state: string): Promise<InstanceEnd | undefined> {
    if (state !== 'pending' && state !== 'running') return undefined;
    const now = this.io.now().getTime();
    if (now - this.lastCheck < WATCHDOG_SECONDS * 1000) return undefined;
    this.lastCheck = now;
    const end = await this.look(instanceId);
    if (!end) {
      this.endedSince.delete(instanceId);
      return undefined;
    }
    const since = this.endedSince.get(instanceId) ?? now;
    this.endedSince.set(instanceId, since);
    return now - since >= WATCHDOG_SECONDS * 1000 ? end : undefined;
  }

  /** How the instance ended, now; undefined while it runs, or when EC2 cannot say. */
  public async look(instanceId: string): Promise<InstanceEnd | undefined> {
    try {
      const reply = await this.clients.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
      const instance = reply.Reservations?.[0]?.Instances?.[0];
      return instance ? endOf(instance, this.io.now()) : undefined;
    } catch {
      return undefined;
    }
  }
}

export const WATCHDOG_SECONDS = 60;
