import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../local/assembly';
import { TRIGGERS } from '../../cli/trigger';
import { call, cloud, newMerchant, orderBody } from './support';

/**
 * The merchant commands through the real CLI process (`node cli/payplane.mjs`, as `npx payplane` runs it), against
 * this suite's local cloud found through a local.json like the one `npm start` writes (with its demo merchant).
 */
const CLI = join(PROJECT_ROOT, 'cli/payplane.mjs');
let localFile: string;
const env = (extra: Record<string, string> = {}) => {
  const { PAYPLANE_API_KEY: _key, PAYPLANE_API_URL: _url, ...rest } = process.env;
  return { ...rest, PAYPLANE_LOCAL_FILE: localFile, ...extra };
};

function payplane(args: string[], extra: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [CLI, ...args], { env: env(extra) }, (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

const json = async (args: string[]) => {
  const r = await payplane([...args, '--json']);
  expect(r, r.stderr).toMatchObject({ code: 0 });
  return JSON.parse(r.stdout);
};

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A developer's webhook handler on this machine: records what it gets, answers 200. */
async function receiver(): Promise<{ url: string; got: Received[]; close(): Promise<void> }> {
  const got: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got, close: () => new Promise((r) => server.close(() => r())) };
}

async function until<T>(what: string, probe: () => T | undefined, ms = 20_000): Promise<T> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
    const value = probe();
    if (value !== undefined) return value;
  }
  throw new Error(`timed out waiting for ${what}`);
}

beforeAll(() => {
  const c = cloud();
  localFile = join(mkdtempSync(join(tmpdir(), 'payplane-cli-merchant-')), 'local.json');
  writeFileSync(
    localFile,
    JSON.stringify({ apiUrl: c.url, region: c.region, stage: c.stage, restApiId: c.restApiId, endpoints: c.endpoints, tables: c.tables, operatorCredentials: c.operatorCredentials, demo: c.demo }),
  );
});

describe('payplane listen, through the real CLI', () => {
  let merchant: { id: string; key: string };
  let hook: Awaited<ReturnType<typeof receiver>>;
  beforeAll(async () => {
    merchant = await newMerchant('Listen merchant');
    hook = await receiver();
  });
  afterAll(() => hook.close());

  it('forwards new events of the --events types once each, signed with the printed whsec, and stops on SIGINT', async () => {
    // Prepare: an event from before the session, which it must not forward.
    const before = await json(['trigger', 'order.succeeded', '--api-key', merchant.key]);
    const child = spawn('node', [CLI, 'listen', '--forward-to', hook.url, '--events', 'order.succeeded,refund.succeeded', '--api-key', merchant.key], { env: env() });
    const lines: string[] = [];
    createInterface({ input: child.stdout }).on('line', (l) => lines.push(l));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const secret = await until('the session secret', () => lines.join('\n').match(/signing secret is (whsec_\S+)/)?.[1]);

    // Act
    const succeeded = await json(['trigger', 'order.succeeded', '--api-key', merchant.key]);
    const closed = await json(['trigger', 'order.closed', '--api-key', merchant.key]); // not in --events
    const refunded = await json(['trigger', 'refund.succeeded', '--api-key', merchant.key]);
    const ids = () => hook.got.map((g) => JSON.parse(g.body).id as string);
    await until('both forwarded', () => (ids().includes(succeeded.event.id) && ids().includes(refunded.event.id) ? true : undefined));
    await new Promise((r) => setTimeout(r, 2_500)); // two more polls: nothing comes twice
    child.kill('SIGINT');

    // Assess: only the new events of those types, once each, each verified by the off-the-shelf library.
    expect(await exited).toBe(0);
    // The refund's trigger paid an order first: its order.succeeded is a new event of a listened type too.
    const ofTypes = async (type: string) => (await call('GET', `/v1/events?type=${type}&limit=100`, { key: merchant.key })).body.data.map((e: { id: string }) => e.id);
    const expected = [...(await ofTypes('order.succeeded')), ...(await ofTypes('refund.succeeded'))].filter((id) => id !== before.event.id);
    expect(expected).toEqual(expect.arrayContaining([succeeded.event.id, refunded.event.id]));
    expect(ids().sort()).toEqual(expected.sort());
    expect(ids()).not.toContain(before.event.id);
    expect(ids()).not.toContain(closed.event.id);
    for (const g of hook.got) {
      const verified = new Webhook(secret).verify(g.body, g.headers as Record<string, string>) as { id: string; type: string };
      expect(['order.succeeded', 'refund.succeeded']).toContain(verified.type);
      expect(g.headers['webhook-id']).toBe(verified.id);
    }
    expect(() => new Webhook(`whsec_${Buffer.alloc(32, 1).toString('base64')}`).verify(hook.got[0]!.body, hook.got[0]!.headers as Record<string, string>)).toThrow();
    const forwarded = JSON.parse(hook.got.find((g) => JSON.parse(g.body).id === succeeded.event.id)!.body);
    expect(forwarded).toMatchObject({ type: 'order.succeeded', data: { object: { id: succeeded.order.id, status: 'succeeded' } } });
    const line = lines.find((l) => l.includes(succeeded.event.id));
    expect(line).toMatch(/order\.succeeded.*<-- \[200\] POST http:\/\/127\.0\.0\.1:\d+\/hook/);
    expect(lines.at(-1)).toBe(`Stopped: forwarded ${expected.length} events.`);
  }, 90_000);

  it('with --since replays what came before, as JSON lines', async () => {
    // Prepare: an event from before the session.
    const earlier = await json(['trigger', 'order.succeeded', '--api-key', merchant.key]);
    const child = spawn('node', [CLI, 'listen', '--forward-to', hook.url, '--events', 'order.succeeded', '--since', earlier.event.created_at, '--json', '--api-key', merchant.key], { env: env() });
    const lines: string[] = [];
    createInterface({ input: child.stdout }).on('line', (l) => lines.push(l));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    // Act
    const line = await until('the replayed event', () => lines.map((l) => JSON.parse(l)).find((l) => l.event === earlier.event.id));
    child.kill('SIGINT');
    // Assess
    expect(await exited).toBe(0);
    expect(JSON.parse(lines[0]!)).toMatchObject({ object: 'listen_session', secret: expect.stringMatching(/^whsec_/), events: ['order.succeeded'], from: earlier.event.created_at });
    expect(line).toMatchObject({ type: 'order.succeeded', status: 200, error: null });
    const got = hook.got.filter((g) => g.headers['webhook-id'] === earlier.event.id);
    expect(got).toHaveLength(1);
    expect(new Webhook(JSON.parse(lines[0]!).secret).verify(got[0]!.body, got[0]!.headers as Record<string, string>)).toMatchObject({ id: earlier.event.id });
  }, 60_000);
});

describe('payplane trigger, through the real CLI', () => {
  it('causes each event type the API can cause, and the event is the one GET /v1/events shows', async () => {
    const merchant = await newMerchant('Trigger merchant');
    const types = Object.keys(TRIGGERS);
    expect(types).toHaveLength(10);
    const results = await Promise.all(types.map((type) => json(['trigger', type, '--api-key', merchant.key])));
    for (const [i, type] of types.entries()) {
      const t = results[i];
      const listed = await call('GET', `/v1/events/${t.event.id}`, { key: merchant.key });
      expect(listed.status).toBe(200);
      expect(listed.body.type).toBe(type);
      expect(listed.body.data.object.id).toBe(type.startsWith('refund.') ? t.refund.id : t.order.id);
    }
    expect(results[types.indexOf('order.payment_failed')].order).toMatchObject({ status: 'requires_payment', last_payment_error: { code: 'card_declined' } });
  }, 120_000);
});

describe('reading and refunding, through the real CLI', () => {
  it('lists and shows orders and events, creates a refund and resends its event, with --json and as tables', async () => {
    // Prepare: an order of a merchant of its own, paid through the API.
    const { key } = await newMerchant('Reading merchant');
    const order = (await call('POST', '/v1/orders', { key, idempotencyKey: crypto.randomUUID(), body: orderBody({ amount: 1999 }) })).body;
    const card = { number: '4242424242424242', exp_month: 12, exp_year: 2034, cvc: '123' };
    expect((await call('POST', `/v1/orders/${order.id}/confirm`, { key, idempotencyKey: crypto.randomUUID(), body: { payment_method: { type: 'card', card } } })).body.status).toBe('succeeded');
    const as = ['--api-key', key];

    // Act + Assess
    expect((await json(['orders', 'list', '--limit', '100', ...as])).data.map((o: { id: string }) => o.id)).toEqual([order.id]);
    expect(await json(['orders', 'show', order.id, ...as])).toMatchObject({ id: order.id, status: 'succeeded', amount: 1999 });
    const refund = await json(['refunds', 'create', '--order', order.id, '--amount', '500', ...as]);
    expect(refund).toMatchObject({ id: expect.stringMatching(/^re_/), order_id: order.id, amount: 500, status: 'succeeded' });
    const events = await json(['events', 'list', '--type', 'refund.created', ...as]);
    expect(events.data).toHaveLength(1);
    const created = events.data[0];
    expect(created).toMatchObject({ type: 'refund.created', data: { object: { id: refund.id, amount: 500 } } });
    expect(await json(['events', 'show', created.id, ...as])).toMatchObject({ id: created.id, deliveries: [] });
    expect(await json(['events', 'resend', created.id, ...as])).toEqual({ object: 'event_resend', event: created.id, queued: [] });

    const shown = await payplane(['orders', 'show', order.id, ...as]);
    expect(shown.stdout).toContain(`${order.id}  succeeded  19.99 USD (refunded 5.00 USD)`);
    const list = await payplane(['events', 'list', '--type', 'refund.created', ...as]);
    expect(list.stdout.split('\n')[0]).toMatch(/^ID +TYPE +OBJECT +VERSION +CREATED$/);
    expect(list.stdout).toContain(created.id);

    // Without --api-key, the local cloud's demo merchant: its orders (read only: other files deliver its events), not this one's.
    const demo = (await call('GET', '/v1/orders?limit=100', { key: cloud().demo!.secretKey })).body;
    const byDefault = await json(['orders', 'list', '--limit', '100']);
    expect(byDefault.data).toEqual(demo.data);
    expect(byDefault.data.map((o: { id: string }) => o.id)).not.toContain(order.id);
  }, 60_000);
});

describe('bad arguments, through the real CLI', () => {
  it('exits non-zero with the fix', async () => {
    const cases: [string[], Record<string, string>, number, RegExp][] = [
      [['listen', '--forward-to', 'localhost:8080'], {}, 2, /Invalid --forward-to 'localhost:8080'.*e\.g\. --forward-to http:\/\/localhost:8080\/hook/],
      [['listen', '--forward-to', 'http://127.0.0.1:9/hook', '--events', 'order.paid'], {}, 2, /'order\.paid' is not an event type.*order\.succeeded/],
      [['trigger', 'refund.failed'], {}, 2, /'refund\.failed' cannot be triggered: .*Triggerable: order\.created/],
      [['trigger', 'order.bogus'], {}, 2, /Unknown event type 'order\.bogus'.*payplane trigger order\.succeeded/],
      [['refunds', 'create'], {}, 2, /'refunds create' needs --order, e\.g\. --order ord_/],
      [['refunds', 'create', '--order', 'ord_x', '--amount', '5.00'], {}, 2, /Invalid --amount '5\.00': use an integer in minor units/],
      [['orders', 'list', '--api-key', 'sk_test_notAKeyOfAnyone'], {}, 1, /refused the key .*401.*--api-key sk_test_/],
      [['orders', 'list', '--api-url', 'https://abc.execute-api.eu-west-1.amazonaws.com/dev'], {}, 2, /needs the merchant's key: pass --api-key sk_test_… or set PAYPLANE_API_KEY/],
      [['orders', 'show', 'ord_unknownUnknown'], {}, 1, /404.*resource_missing|No such order/i],
      [['merchants', 'create', '--name', 'x', '--api-key', 'sk_test_x'], {}, 2, /Option --api-key does not apply to 'merchants create'/],
    ];
    const results = await Promise.all(cases.map(([args, extra]) => payplane(args, extra)));
    for (const [i, [args, , code, message]] of cases.entries()) {
      expect({ args, code: results[i]!.code }).toEqual({ args, code });
      expect(results[i]!.stderr, args.join(' ')).toMatch(message);
    }
  }, 60_000);
});
