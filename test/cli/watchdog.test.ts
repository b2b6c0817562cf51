/*
 * How the launcher reads the end of an attempt's instance. The codes are EC2's, as the EC2 API Reference, "StateReason"
 * (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_StateReason.html) lists them:
 * Server.SpotInstanceTermination / Server.SpotInstanceShutdown (the Spot service reclaimed it),
 * Client.UserInitiatedShutdown ("shut down using the Amazon EC2 API"), Client.InstanceInitiatedShutdown ("shut down
 * from the operating system of the instance"), Client.InternalError ("a client error caused the instance to terminate
 * during launch"). StateTransitionReason holds the time of the change, e.g. "User initiated (2026-12-01 12:00:00 GMT)"
 * (EC2 API Reference, Instance). Moto sets only Client.UserInitiatedShutdown (launcher.moto.test.ts runs that one).
 */
import { Instance } from '@aws-sdk/client-ec2';
import { endOf } from '../../src/cli/watchdog';

const NOW = new Date('2026-12-01T12:00:00Z');

function instance(state: string, code?: string, extra: Partial<Instance> = {}): Instance {
  return {
    InstanceId: 'i-0123456789abcdef0',
    State: { Name: state as any },
    ...(code ? { StateReason: { Code: code, Message: `${code}: message` } } : {}),
    LaunchTime: new Date('2026-12-01T11:00:00Z'),
    Tags: [{ Key: 'MaxLifetimeHours', Value: '1.25' }],
    ...extra,
  };
}

test.each(['pending', 'running'])('a %s instance has not ended', (state) => {
  expect(endOf(instance(state), NOW)).toBeUndefined();
});

test.each([
  ['terminated', 'Server.SpotInstanceTermination'],
  ['stopped', 'Server.SpotInstanceShutdown'],
])('%s by %s: a spot reclaim, the run goes on', (state, code) => {
  expect(endOf(instance(state, code), NOW)).toMatchObject({ resumable: true, reaper: false, reason: `EC2 reclaimed the spot instance (${code})` });
});

test.each([
  ['Client.UserInitiatedShutdown', /terminated or stopped through the EC2 API or console/],
  ['Client.InstanceInitiatedShutdown', /shut down from its own operating system/],
  ['Client.InternalError', /EC2 ended it during launch \(Client\.InternalError: Client\.InternalError: message\); .*KMS key/],
  ['Server.InternalError', /it is terminated \(Server\.InternalError: Server\.InternalError: message\)/],
  [undefined, /it is terminated \(EC2 gave no StateReason\)/],
])('terminated by %s: the run ends, with the reason in words', (code, reason) => {
  const end = endOf(instance('terminated', code), NOW)!;
  expect(end.resumable).toBe(false);
  expect(end.reaper).toBe(false);
  expect(end.reason).toMatch(reason);
});

// The run reaper terminates through the API an instance older than its MaxLifetimeHours tag, counted from LaunchTime.
test('terminated through the API after its MaxLifetimeHours tag: the run reaper', () => {
  const late = instance('terminated', 'Client.UserInitiatedShutdown', { StateTransitionReason: 'User initiated (2026-12-01 12:15:00 GMT)' });
  expect(endOf(late, NOW)).toMatchObject({ resumable: false, reaper: true, reason: expect.stringContaining('the run reaper terminated it') });
  // The same end 14 minutes earlier (1 h 01 m after launch) is within the tag: a user's, not the reaper's.
  const early = instance('terminated', 'Client.UserInitiatedShutdown', { StateTransitionReason: 'User initiated (2026-12-01 12:01:00 GMT)' });
  expect(endOf(early, NOW)).toMatchObject({ reaper: false });
});
