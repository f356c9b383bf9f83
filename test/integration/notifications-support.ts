import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { seal } from '../../functions/commons/crypto';
import { newId } from '../../functions/commons/ids';
import { Secret } from '../../functions/commons/secret';
import { API_VERSION, eventItem, newEventId, type EventType, type PlatformEvent } from '../../functions/events/event';

/**
 * What the notification tests share: endpoint and event items written as COMMON.md documents them (the
 * endpoints module and the writer own those writes; until they land, tests write the items directly), and a
 * real HTTP receiver that answers from a script.
 */
export const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

export async function putEndpoint(
  db: DynamoDBDocumentClient,
  table: string,
  merchantId: string,
  url: string,
  options: { secrets?: { secret: string; expires_at?: string }[]; enabled_events?: string[]; id?: string } = {},
): Promise<{ id: string; secrets: string[] }> {
  const id = options.id ?? newId('we');
  const now = new Date().toISOString();
  const secrets = options.secrets ?? [{ secret: newSecret() }];
  await db.send(
    new PutCommand({
      TableName: table,
      Item: {
        pk: `WEBHOOKENDPOINT#${id}`,
        sk: 'ENDPOINT',
        type: 'webhook_endpoint',
        gsi1pk: `MERCHANT#${merchantId}`,
        gsi1sk: `WEBHOOKENDPOINT#${now}#${id}`,
        id,
        merchant_id: merchantId,
        url,
        enabled_events: options.enabled_events ?? ['*'],
        disabled: false,
        created_at: now,
        updated_at: now,
        consecutive_failures: 0,
        secrets: await Promise.all(
          secrets.map(async (s) => ({
            ciphertext: await seal(new Secret(s.secret), { purpose: 'webhook_secret', merchantId, recordId: id }),
            ...(s.expires_at ? { expires_at: s.expires_at } : {}),
          })),
        ),
      },
    }),
  );
  return { id, secrets: secrets.map((s) => s.secret) };
}

export function platformEvent(type: EventType, object: Record<string, unknown> = {}, now = new Date()): PlatformEvent {
  return {
    id: newEventId(now),
    object: 'event',
    type,
    created_at: now.toISOString(),
    api_version: API_VERSION,
    livemode: false,
    data: { object: { id: newId('ord'), object: 'order', version: 1, amount: 2500, currency: 'USD', ...object } },
    request: null,
  };
}

export async function putEvent(db: DynamoDBDocumentClient, table: string, merchantId: string, event: PlatformEvent) {
  const item = eventItem(merchantId, event);
  await db.send(new PutCommand({ TableName: table, Item: item }));
  return item;
}

export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A real HTTP server on 127.0.0.1 whose answer to the nth request (0-based) `answer` decides. */
export async function startReceiver(answer: (n: number, req: Received) => { status: number; headers?: Record<string, string> } | 'hang' = () => ({ status: 200 })) {
  const received: Received[] = [];
  const hanging = new Set<() => void>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = { path: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      const n = received.push(r) - 1;
      const a = answer(n, r);
      if (a === 'hang') {
        // Never answers on its own: the deliverer's timeout ends it (or the test releases it).
        const release = () => res.destroy();
        hanging.add(release);
        res.on('close', () => hanging.delete(release));
        return;
      }
      res.writeHead(a.status, a.headers).end(a.status < 300 ? 'ok' : 'no');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: (path = '/hook') => `http://127.0.0.1:${port}${path}`,
    received,
    close: async () => {
      for (const release of hanging) release();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
