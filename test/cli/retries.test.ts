/*
 * How many RunInstances requests one fallback step sends, counted where they arrive: a small EC2 Query API endpoint
 * on loopback, reached through the launcher's own clients (createClients, AWS_ENDPOINT_URL). No SDK mock: the SDK's
 * retry middleware runs as it does against AWS.
 *
 * InsufficientInstanceCapacity is a server error (5xx): EC2 API Reference, "Error codes for the Amazon EC2 API",
 * "Server error codes". The SDK's standard retry repeats server errors up to three attempts (@smithy/util-retry,
 * StandardRetryStrategy; @smithy/service-error-classification isServerError), so a launcher that used it would send
 * each fallback step three times. RequestLimitExceeded is EC2's throttling ("Request throttling" in the EC2 API
 * Reference: retry with exponential backoff), the one error the launcher sends again.
 */
import * as http from 'http';
import { AddressInfo } from 'net';
import { twoZoneFoundation } from './helpers';
import { createClients } from '../../src/cli/context';
import { launchWithFallback, LaunchRequest } from '../../src/cli/launch';

/** The RunInstances requests received, as `InstanceType SubnetId`. */
let received: string[] = [];
/** The error code of each RunInstances answer, in order; after the list: success. */
let answers: string[] = [];
let server: http.Server;
const saved: Record<string, string | undefined> = {};

function ec2Error(res: http.ServerResponse, status: number, code: string, message: string) {
  res.writeHead(status, { 'content-type': 'text/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error>` +
    '</Errors><RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>');
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const form = new URLSearchParams(body);
      const action = form.get('Action');
      if (action === 'DescribeInstanceTypeOfferings') {
        ec2Error(res, 403, 'UnauthorizedOperation', 'You are not authorized to perform this operation.');
        return;
      }
      if (action !== 'RunInstances') {
        ec2Error(res, 400, 'InvalidAction', `not served here: ${action}`);
        return;
      }
      received.push(`${form.get('InstanceType')} ${form.get('SubnetId')}`);
      const code = answers.shift();
      if (code === 'InsufficientInstanceCapacity') {
        ec2Error(res, 500, code, 'We currently do not have sufficient g5.xlarge capacity in the Availability Zone you requested.');
      } else if (code === 'RequestLimitExceeded') {
        ec2Error(res, 503, code, 'Request limit exceeded.');
      } else {
        res.writeHead(200, { 'content-type': 'text/xml' });
        res.end('<?xml version="1.0" encoding="UTF-8"?>\n<RunInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">' +
          '<requestId>1</requestId><reservationId>r-0123456789abcdef0</reservationId><ownerId>123456789012</ownerId>' +
          '<instancesSet><item><instanceId>i-0123456789abcdef0</instanceId></item></instancesSet></RunInstancesResponse>');
      }
    });
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  for (const k of ['AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_EC2', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE']) {
    saved[k] = process.env[k];
    delete process.env[k];
  }
  process.env.AWS_ENDPOINT_URL = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.env.AWS_ACCESS_KEY_ID = 'testing';
  process.env.AWS_SECRET_ACCESS_KEY = 'testing';
});

afterAll(async () => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await new Promise(resolve => server.close(resolve));
});

beforeEach(() => {
  received = [];
  answers = [];
});

const foundation = twoZoneFoundation('2');
const request: LaunchRequest = {
  runId: 'r-20261201-120000-abcdef', attempt: 1, instanceTypes: ['g5.xlarge'], markets: ['spot'], maxLifetimeHours: 4.25,
};

test('a capacity error (5xx) is sent once per fallback step: the SDK does not repeat it', async () => {
  answers = ['InsufficientInstanceCapacity', 'InsufficientInstanceCapacity'];
  const clients = createClients({ region: 'us-east-1' });
  await expect(launchWithFallback(clients, foundation, request, () => {}, async () => {}))
    .rejects.toThrow(/no capacity: all 2 tries failed/);
  expect(received).toEqual(['g5.xlarge subnet-a', 'g5.xlarge subnet-b']);
});

test('a throttled RunInstances is sent again (the launcher\'s backoff), then the launch goes on', async () => {
  answers = ['RequestLimitExceeded', 'RequestLimitExceeded'];
  const clients = createClients({ region: 'us-east-1' });
  const waits: number[] = [];
  const won = await launchWithFallback(clients, foundation, request, () => {}, async (ms) => { waits.push(ms); });
  expect(won).toMatchObject({ instanceId: 'i-0123456789abcdef0', subnetId: 'subnet-a', tries: 1 });
  expect(received).toEqual(['g5.xlarge subnet-a', 'g5.xlarge subnet-a', 'g5.xlarge subnet-a']);
  expect(waits).toHaveLength(2);
});
