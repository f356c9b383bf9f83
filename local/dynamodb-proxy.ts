import { Agent, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { listen, readBody, sendJson, type LocalServer } from './http';
import { INVALID_TOKEN_MESSAGE, type AccessRequest, type LocalIam } from './iam';
import type { DynamoDbRecorder } from './dynamodb-recorder';
import type { LocalStack } from './template';

/**
 * A thin loopback proxy in front of DynamoDB Local that checks each call against IAM first, because
 * DynamoDB Local checks nothing. It derives the actions and resources as DynamoDB does:
 * - a Query or Scan on an index is `dynamodb:Query` / `Scan` on `…/table/T/index/I`;
 * - TransactWriteItems needs `PutItem` / `UpdateItem` / `DeleteItem` / `ConditionCheckItem` per item, on
 *   each item's table (there is no dynamodb:TransactWriteItems action); TransactGetItems needs `GetItem`;
 * - BatchGetItem / BatchWriteItem are their own actions, on every table they name;
 * - a table encrypted with a customer-managed key is also DynamoDB using that key on the caller's
 *   behalf: `kms:Decrypt` on the key with `kms:ViaService = dynamodb.<region>.amazonaws.com` and the
 *   table's encryption context. DynamoDB Local never calls KMS, so the proxy asks in its place.
 * The body is forwarded untouched; a refusal is DynamoDB's own AccessDeniedException (JSON 1.0).
 */

type Json = Record<string, unknown>;

/** DynamoDB operations that read or write items (and so use the table's KMS key). */
const DATA_PLANE = new Set([
  'GetItem', 'PutItem', 'UpdateItem', 'DeleteItem', 'Query', 'Scan', 'BatchGetItem', 'BatchWriteItem', 'TransactGetItems', 'TransactWriteItems',
  'ExecuteStatement', 'BatchExecuteStatement', 'ExecuteTransaction',
]);

const TRANSACT_WRITE_ACTIONS: Record<string, string> = { Put: 'PutItem', Update: 'UpdateItem', Delete: 'DeleteItem', ConditionCheck: 'ConditionCheckItem' };

export class DynamoDbAccess {
  private readonly tableKeys = new Map<string, string>();

  constructor(private readonly stack: LocalStack) {
    for (const [id, table] of stack.resourcesOfType('AWS::DynamoDB::Table', 'AWS::DynamoDB::GlobalTable')) {
      const p = table.Properties ?? {};
      const sse = (p.SSESpecification ?? {}) as { KMSMasterKeyId?: unknown; SSEType?: unknown };
      const replica = ((p.Replicas as { SSESpecification?: { KMSMasterKeyId?: unknown } }[] | undefined) ?? [])[0];
      const keyRef = sse.KMSMasterKeyId ?? replica?.SSESpecification?.KMSMasterKeyId;
      if (keyRef !== undefined) this.tableKeys.set(stack.tableName(id), this.keyArn(String(stack.resolve(keyRef, `${id}.SSESpecification`))));
    }
  }

  tableArn(nameOrArn: string): string {
    return nameOrArn.startsWith('arn:') ? nameOrArn : `arn:aws:dynamodb:${this.stack.region}:${this.stack.account}:table/${nameOrArn}`;
  }

  /** What IAM evaluates for one DynamoDB (or DynamoDB Streams) operation. */
  requests(operation: string, input: Json): AccessRequest[] {
    const out: AccessRequest[] = [];
    const tables = new Set<string>();
    const on = (action: string, table: unknown, index?: unknown) => {
      const name = String(table);
      tables.add(name.startsWith('arn:') ? name.replace(/^.*:table\//, '').split('/')[0]! : name);
      out.push({ action: `dynamodb:${action}`, resource: `${this.tableArn(name)}${index ? `/index/${String(index)}` : ''}` });
    };
    switch (operation) {
      case 'Query':
      case 'Scan':
        on(operation, input.TableName, input.IndexName);
        break;
      case 'BatchGetItem':
      case 'BatchWriteItem':
        for (const table of Object.keys((input.RequestItems ?? {}) as Json)) on(operation, table);
        break;
      case 'TransactWriteItems':
        for (const item of (input.TransactItems ?? []) as Json[]) {
          for (const [kind, action] of Object.entries(TRANSACT_WRITE_ACTIONS)) {
            const part = item[kind] as Json | undefined;
            if (part) on(action, part.TableName);
          }
        }
        break;
      case 'TransactGetItems':
        for (const item of (input.TransactItems ?? []) as Json[]) on('GetItem', (item.Get as Json | undefined)?.TableName);
        break;
      case 'ListTables':
      case 'ListStreams':
      case 'DescribeLimits':
      case 'DescribeEndpoints':
        out.push({ action: `dynamodb:${operation}`, resource: '*' });
        break;
      case 'DescribeStream':
      case 'GetShardIterator':
        out.push({ action: `dynamodb:${operation}`, resource: String(input.StreamArn) });
        break;
      case 'GetRecords':
        // DynamoDB Local's shard iterators carry the stream ARN; AWS authorizes GetRecords on it.
        out.push({ action: 'dynamodb:GetRecords', resource: /arn:aws:dynamodb:[^|]+\/stream\/[^|]+/.exec(String(input.ShardIterator))?.[0] ?? '*' });
        break;
      default:
        // GetItem, PutItem, UpdateItem, DeleteItem, DescribeTable, DescribeTimeToLive…: the table named.
        on(operation, input.TableName ?? input.ResourceArn);
    }
    if (DATA_PLANE.has(operation)) {
      for (const table of tables) {
        const key = this.tableKeys.get(table);
        if (!key) continue;
        out.push({
          action: 'kms:Decrypt',
          resource: key,
          context: {
            'kms:ViaService': `dynamodb.${this.stack.region}.amazonaws.com`,
            'kms:CallerAccount': this.stack.account,
            'kms:EncryptionContext:aws:dynamodb:tableName': table,
            'kms:EncryptionContext:aws:dynamodb:subscriberId': this.stack.account,
          },
        });
      }
    }
    return out;
  }

  private keyArn(idOrArn: string): string {
    if (idOrArn.startsWith('arn:')) return idOrArn;
    const key = this.stack.resourcesOfType('AWS::KMS::Key').find(([id]) => this.stack.kmsKeyId(id) === idOrArn);
    return key ? this.stack.kmsKeyArn(key[0]) : idOrArn;
  }
}

export interface DynamoDbProxy {
  url: string;
  stop(): Promise<void>;
}

/** `recorder`: the bench's record of the requests made (local/dynamodb-recorder.ts); it acts only while started. */
export async function startDynamoDbProxy(stack: LocalStack, iam: LocalIam, upstream: string, recorder?: DynamoDbRecorder): Promise<DynamoDbProxy> {
  const access = new DynamoDbAccess(stack);
  const target = new URL(upstream);
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const server: LocalServer = await listen((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError', message: String(error) });
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req, 16 * 1024 * 1024);
    const targetHeader = String(req.headers['x-amz-target'] ?? '');
    const operation = targetHeader.slice(targetHeader.indexOf('.') + 1);
    if (req.method === 'POST' && operation) {
      const refused = await check(req, operation, body);
      if (refused) {
        sendJson(res, 400, refused.body, { 'Content-Type': 'application/x-amz-json-1.0', 'x-amzn-RequestId': randomUUID() });
        return;
      }
    }
    if (recorder?.handles(operation)) await record(req, res, operation, body);
    else await forward(req, res, body);
  }

  async function record(req: IncomingMessage, res: ServerResponse, operation: string, body: Buffer): Promise<void> {
    const input = JSON.parse(body.toString('utf8')) as Json;
    const asked = input.ReturnConsumedCapacity !== undefined && input.ReturnConsumedCapacity !== 'NONE';
    let headers: IncomingMessage['headers'] = {};
    const { status, body: output } = await recorder!.around(operation, iam.principalOf(req.headers)?.name ?? 'unknown', input, async (sent) => {
      const answer = await forwardBuffered(req, Buffer.from(JSON.stringify(sent)));
      headers = answer.headers;
      return { status: answer.status, body: JSON.parse(answer.body.toString('utf8') || '{}') as Json };
    });
    // The caller gets what it asked for: no ConsumedCapacity it did not request.
    if (!asked) delete output.ConsumedCapacity;
    const text = JSON.stringify(output);
    // The body changed: its checksum and length are recomputed (or dropped), never the upstream's.
    const { 'x-amz-crc32': _crc, 'content-length': _length, 'transfer-encoding': _chunked, ...rest } = headers;
    void [_crc, _length, _chunked];
    res.writeHead(status, { ...rest, 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  function forwardBuffered(req: IncomingMessage, body: Buffer): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const upstreamReq = httpRequest(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host, 'content-length': String(body.length) }, agent },
        (upstreamRes) => {
          const chunks: Buffer[] = [];
          upstreamRes.on('data', (c: Buffer) => chunks.push(c));
          upstreamRes.on('end', () => resolve({ status: upstreamRes.statusCode ?? 502, headers: upstreamRes.headers, body: Buffer.concat(chunks) }));
          upstreamRes.on('error', reject);
        },
      );
      upstreamReq.on('error', reject);
      upstreamReq.end(body);
    });
  }

  async function check(req: IncomingMessage, operation: string, body: Buffer): Promise<{ body: Json } | undefined> {
    let input: Json | undefined;
    try {
      input = body.length ? (JSON.parse(body.toString('utf8')) as Json) : {};
    } catch {
      input = undefined; // only the caller is checked: DynamoDB Local answers with its SerializationException
    }
    const { refuse } = await iam.check(req.headers, input && access.requests(operation, input));
    if (!refuse) return undefined;
    return refuse.unknownKey
      ? { body: { __type: 'com.amazon.coral.service#UnrecognizedClientException', message: INVALID_TOKEN_MESSAGE } }
      : { body: { __type: 'com.amazon.coral.service#AccessDeniedException', Message: refuse.message } };
  }

  function forward(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const upstreamReq = httpRequest(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host }, agent },
        (upstreamRes) => {
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
          upstreamRes.pipe(res);
          upstreamRes.on('end', resolve);
          upstreamRes.on('error', reject);
        },
      );
      upstreamReq.on('error', reject);
      upstreamReq.end(body);
    });
  }

  return {
    url: server.url,
    stop: async () => {
      await server.close();
      agent.destroy();
    },
  };
}
