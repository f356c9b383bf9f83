import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../local/cloud';
import { listen } from '../../local/http';
import { ADMIN_ACCESS_KEY_ID } from '../../local/iam';
import { startSqs, type SqsEndpoint } from '../../local/sqs';
import { LocalStack } from '../../local/template';

/**
 * Issue 7 findings 9 and 14: no request takes the local cloud down, and nothing it runs is reachable from
 * another machine. Real HTTP against every endpoint the local cloud serves (the fixture assembly's API and
 * control plane, the KMS and SQS emulators, DynamoDB Local).
 */
const FIXTURE = join(import.meta.dirname, 'fixtures', 'local-cloud');
/** Names every plain object inherits: indexing `{}` with them finds a function, or the prototype itself. */
const PROTOTYPE_NAMES = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__'];

let cloud: LocalCloud;
let sqs: SqsEndpoint;

beforeAll(async () => {
  cloud = await startLocalCloud({
    assemblyDir: FIXTURE,
    port: 0,
    inMemory: true,
    quiet: true,
    schedules: false,
    seed: false,
    dynamodbEndpoint: inject('localServices').endpoints.dynamodb,
  });
  // The fixture has no queue; the SQS emulator gets a template of its own.
  sqs = await startSqs(new LocalStack({ Resources: { Jobs: { Type: 'AWS::SQS::Queue' } } }, { stackName: 'Hostile' }));
});
afterAll(async () => {
  await sqs?.stop();
  await cloud?.stop();
});

const hostileQuery = PROTOTYPE_NAMES.map((n, i) => `${n}=${i}`).join('&');
const hostileHeaders = () => {
  const headers = new Headers();
  // `__proto__` and friends as header names: Headers keeps them as plain names.
  PROTOTYPE_NAMES.forEach((n, i) => headers.append(n, `h${i}`));
  return headers;
};
/** The local cloud checks IAM before anything else and reads only the SigV4 access key id: act as its administrator. */
const asAdmin = (service: string) => `AWS4-HMAC-SHA256 Credential=${ADMIN_ACCESS_KEY_ID}/20261201/us-east-1/${service}/aws4_request, SignedHeaders=host, Signature=0`;
const stillServes = async () => {
  const res = await fetch(`${cloud.url}/v1/health`);
  expect(res.status).toBe(200);
};

describe('no request takes the local cloud down (finding 9)', () => {
  it('answers the probe of the report, GET /dev/x?toString=1, and keeps serving', async () => {
    const res = await fetch(`${cloud.url}/x?toString=1`);
    expect(res.status).toBe(404);
    await stillServes();
  });

  it('passes Object-prototype names in the query and in headers to the function as plain data', async () => {
    const { port } = new URL(cloud.url);
    for (const path of ['/v1/health', '/v1/orders/ord_1']) {
      // Raw HTTP: fetch() silently drops a header named `__proto__`.
      const headers = PROTOTYPE_NAMES.map((n, i) => `${n}: h${i}\r\n`).join('');
      const answer = await rawRequest(
        Number(port),
        `GET /${cloud.stage}${path}?${hostileQuery} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer good-hostile\r\n${headers}Connection: close\r\n\r\n`,
      );
      expect(answer).toMatch(/^HTTP\/1\.1 200/);
      const { event } = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { event: Record<string, Record<string, unknown>> };
      // Own properties: reading `x.__proto__` would give the prototype, not the parsed key.
      const own = (record: unknown, name: string) => Object.getOwnPropertyDescriptor(record, name)?.value;
      PROTOTYPE_NAMES.forEach((name, i) => {
        expect(own(event.queryStringParameters, name)).toBe(String(i));
        expect(own(event.multiValueQueryStringParameters, name)).toEqual([String(i)]);
        expect(own(event.headers, name)).toBe(`h${i}`);
        expect(own(event.multiValueHeaders, name)).toEqual([`h${i}`]);
      });
    }
    await stillServes();
  });

  it('reports its own address as domainName under a forged Host (finding 10)', async () => {
    // fetch() cannot forge Host; a raw request can.
    const { port } = new URL(cloud.url);
    const answer = await rawRequest(Number(port), `GET /${cloud.stage}/v1/health HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    const event = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)).event;
    expect(event.headers.Host).toBe('evil.example'); // passed on as API Gateway does, but never our name
    expect(event.requestContext.domainName).toBe(`127.0.0.1:${port}`);
    expect(event.requestContext.domainPrefix).toBe('127');
  });

  it.each(PROTOTYPE_NAMES)('answers the KMS and SQS emulators an operation named %s as unknown, with no state in the answer', async (name) => {
    for (const [endpoint, service, code] of [
      [cloud.endpoints.kms!, 'TrentService', 'UnsupportedOperationException'],
      [sqs.url, 'AmazonSQS', 'UnsupportedOperation'],
    ] as const) {
      const res = await fetch(endpoint, { method: 'POST', headers: { 'X-Amz-Target': `${service}.${name}`, [name]: 'x', 'Content-Type': 'application/x-amz-json-1.1', Authorization: asAdmin(service === 'TrentService' ? 'kms' : 'sqs') }, body: '{}' });
      expect(res.status).toBe(400);
      const body = (await res.json()) as { __type: string; message: string };
      expect(body.__type).toContain(code);
      expect(Object.keys(body).sort()).toEqual(['__type', 'message']);
    }
    expect((await fetch(`${cloud.endpoints.kms}/__stats`)).status).toBe(200);
    expect((await fetch(`${sqs.url}/__stats`)).status).toBe(200);
  });

  it('answers the control plane with Object-prototype names in the path, query and headers', async () => {
    const headers = hostileHeaders();
    headers.set('Authorization', asAdmin('apigateway'));
    expect((await fetch(`${cloud.endpoints.admin}/__stats?${hostileQuery}`, { headers })).status).toBe(200);
    for (const name of PROTOTYPE_NAMES) {
      const res = await fetch(`${cloud.endpoints.admin}/restapis/${name}/stages/${name}/cache/authorizers`, { method: 'DELETE', headers });
      expect(res.status).toBe(404);
    }
    await stillServes();
  });

  it('turns a handler that throws or rejects into a 500 and keeps listening', async () => {
    let calls = 0;
    const server = await listen((req) => {
      calls++;
      if (req.url === '/sync') throw new Error('thrown in the callback');
      return Promise.reject(new Error('rejected in the callback'));
    });
    try {
      expect((await fetch(`${server.url}/sync`)).status).toBe(500);
      expect((await fetch(`${server.url}/async`)).status).toBe(500);
      expect((await fetch(`${server.url}/sync`)).status).toBe(500);
      expect(calls).toBe(3);
    } finally {
      await server.close();
    }
  });
});

/** Addresses of this machine other than loopback (what another host on the network would connect to). */
const externalAddresses = Object.values(networkInterfaces())
  .flat()
  .filter((a) => a !== undefined && !a.internal && !a.address.startsWith('fe80:'))
  .map((a) => a!.address);

describe('every local endpoint is reachable from loopback only (finding 14)', () => {
  const endpoints = () => ({
    api: cloud.endpoints.api,
    'control plane': cloud.endpoints.admin,
    kms: cloud.endpoints.kms!,
    sqs: sqs.url,
    'DynamoDB Local': inject('localServices').endpoints.dynamodb,
  });

  it.skipIf(externalAddresses.length === 0)('refuses connections on the machine’s other addresses and serves 127.0.0.1', async () => {
    for (const [name, url] of Object.entries(endpoints())) {
      const port = Number(new URL(url).port);
      expect(await tcpOutcome('127.0.0.1', port), `${name} on 127.0.0.1`).toBe('connected');
      for (const address of externalAddresses) {
        expect(await tcpOutcome(address, port), `${name} on ${address}:${port}`).toBe('ECONNREFUSED');
      }
    }
  });
});

function tcpOutcome(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 5000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve('timeout');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let answer = '';
    socket.on('data', (d) => (answer += d.toString()));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
    socket.write(text);
  });
}
