import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { countCall, listen, readBody, sendJson, type LocalServer } from './http';
import { callerName, INVALID_TOKEN_MESSAGE, type AccessRequest, type LocalIam } from './iam';
import { TemplateError, type LocalStack } from './template';

/**
 * An SQS-compatible endpoint for the template's AWS::SQS::Queue resources, speaking the protocol the
 * current @aws-sdk/client-sqs speaks: AWS JSON 1.0 (`POST /`, `Content-Type: application/x-amz-json-1.0`,
 * `X-Amz-Target: AmazonSQS.<Operation>`), errors as `{"__type": "com.amazonaws.sqs#QueueDoesNotExist",
 * "message"}` plus the `x-amzn-query-error: AWS.SimpleQueueService.NonExistentQueue;Sender` header the SDK
 * maps to its typed exceptions. The old Query protocol (form-encoded `Action=…`) is refused with a
 * message that says so.
 *
 * Operations (exactly what the platform uses; adding one = one entry in OPERATIONS): SendMessage,
 * SendMessageBatch, ReceiveMessage, DeleteMessage, DeleteMessageBatch, ChangeMessageVisibility,
 * GetQueueUrl, GetQueueAttributes.
 *
 * Semantics kept from SQS, because code depends on them:
 * - visibility timeout per queue / per receive / ChangeMessageVisibility; a message comes back when it
 *   expires, with ApproximateReceiveCount + 1 and a new receipt handle. Deleting with an older receipt
 *   handle succeeds but deletes nothing (as documented);
 * - per-message and per-queue DelaySeconds; long polling (WaitTimeSeconds, or the queue's
 *   ReceiveMessageWaitTimeSeconds) answers as soon as one message is available;
 * - RedrivePolicy: a message received maxReceiveCount times moves to the dead-letter queue on the next
 *   receive attempt, keeping its id, body, attributes and SentTimestamp, plus DeadLetterQueueSourceArn;
 * - FIFO: MessageGroupId required, order within a group, a group is locked while one of its messages
 *   is in flight, MessageDeduplicationId (or ContentBasedDeduplication) deduplicates for 5 minutes,
 *   SequenceNumber; no per-message delay;
 * - MessageRetentionPeriod, MaximumMessageSize, MD5OfMessageBody / MD5OfMessageAttributes (the SDK
 *   checks the former), message attribute and batch validation with SQS's error codes.
 *
 * A queue URL is `http://127.0.0.1:<port>/<account>/<queue name>`, which is what `Ref` resolves to once
 * the endpoint listens (the SDK sends requests to the QueueUrl's host unless an endpoint is configured,
 * so the URL must point here). Any host is accepted as long as the path names a queue.
 *
 * Persistent mode snapshots every queue's messages to a file on stop and reloads them on start
 * (a SIGKILL loses what changed since the last start).
 *
 * Local-only additions (no AWS client sees them):
 * - a time scale divides DelaySeconds and visibility timeouts (per queue, per receive, per
 *   ChangeMessageVisibility; a scaled visibility timeout is at least 250 ms), so hours of delayed hops run in
 *   seconds. Attributes report the template's
 *   values. Long-poll waits, retention and FIFO deduplication windows stay real time: a long poll ends as
 *   soon as a message is there (scaling it only makes pollers spin), and shorter retention or
 *   deduplication would only lose messages or let duplicates through.
 * - every stored message's requested delay is recorded (`sent()`), so tests assert a retry schedule from
 *   the delays asked for rather than from wall-clock arrival;
 * - `hold()` keeps received messages invisible while the local Lambda poller's invocation runs (see there).
 */

type Json = Record<string, any>;

export const DEDUPLICATION_WINDOW_MS = 5 * 60_000;
const MAX_WAIT_SECONDS = 20;
const MAX_VISIBILITY_SECONDS = 43_200;
const MAX_DELAY_SECONDS = 900;
/** The shortest a time-scaled visibility timeout gets (see LocalSqs.visibilityMs). */
export const VISIBILITY_FLOOR_MS = 250;
const BATCH_ID = /^[A-Za-z0-9_-]{1,80}$/;

/** JSON `__type` shape name → [x-amzn-query-error code, HTTP status]. From the SDK's error schemas. */
const MODELED_ERRORS: Record<string, [string, number]> = {
  QueueDoesNotExist: ['AWS.SimpleQueueService.NonExistentQueue', 400],
  ReceiptHandleIsInvalid: ['ReceiptHandleIsInvalid', 404],
  MessageNotInflight: ['AWS.SimpleQueueService.MessageNotInflight', 400],
  InvalidAttributeName: ['InvalidAttributeName', 400],
  InvalidAttributeValue: ['InvalidAttributeValue', 400],
  InvalidMessageContents: ['InvalidMessageContents', 400],
  InvalidIdFormat: ['InvalidIdFormat', 400],
  BatchEntryIdsNotDistinct: ['AWS.SimpleQueueService.BatchEntryIdsNotDistinct', 400],
  BatchRequestTooLong: ['AWS.SimpleQueueService.BatchRequestTooLong', 400],
  EmptyBatchRequest: ['AWS.SimpleQueueService.EmptyBatchRequest', 400],
  InvalidBatchEntryId: ['AWS.SimpleQueueService.InvalidBatchEntryId', 400],
  TooManyEntriesInBatchRequest: ['AWS.SimpleQueueService.TooManyEntriesInBatchRequest', 400],
  UnsupportedOperation: ['AWS.SimpleQueueService.UnsupportedOperation', 400],
};

export class SqsError extends Error {
  readonly queryCode: string;
  readonly status: number;
  constructor(
    readonly type: string,
    message: string,
    readonly senderFault = true,
  ) {
    super(message);
    this.name = type;
    const modeled = MODELED_ERRORS[type];
    // Common (unmodeled) errors: InvalidParameterValue, MissingParameter, InvalidAction… use their code as is.
    this.queryCode = modeled?.[0] ?? type;
    this.status = modeled?.[1] ?? 400;
  }
}

const invalidValue = (parameter: string, value: unknown, reason: string) =>
  new SqsError('InvalidParameterValue', `Value ${String(value)} for parameter ${parameter} is invalid. Reason: ${reason}`);
const missing = (parameter: string) => new SqsError('MissingParameter', `The request must contain the parameter ${parameter}.`);

// ---- queues from the template ------------------------------------------------------------------

export interface QueueConfig {
  logicalId: string;
  name: string;
  arn: string;
  fifo: boolean;
  contentBasedDeduplication: boolean;
  deduplicationScope: 'queue' | 'messageGroup';
  visibilityTimeout: number;
  delaySeconds: number;
  retentionPeriod: number;
  maximumMessageSize: number;
  receiveWaitTime: number;
  redrive?: { deadLetterTargetArn: string; maxReceiveCount: number };
  kmsMasterKeyId?: string;
  sqsManagedSse: boolean;
}

function intProperty(p: Json, name: string, fallback: number, min: number, max: number, where: string): number {
  const raw = p[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new TemplateError(`${where}.${name} is ${JSON.stringify(raw)}; CloudFormation accepts an integer from ${min} to ${max}.`);
  }
  return n;
}

/** Reads every AWS::SQS::Queue of the template, validated as CloudFormation would. */
export function queueConfigs(stack: LocalStack): QueueConfig[] {
  const queues = stack.resourcesOfType('AWS::SQS::Queue').map(([logicalId, r]): QueueConfig => {
    const p = (stack.resolve(r.Properties ?? {}, logicalId) ?? {}) as Json;
    const fifo = p.FifoQueue === true || p.FifoQueue === 'true';
    const name = stack.queueName(logicalId);
    if (fifo !== name.endsWith('.fifo')) {
      throw new TemplateError(`${logicalId}: the name of a FIFO queue must end with .fifo, and only a FIFO queue's may (${name}).`);
    }
    if (!/^[A-Za-z0-9_-]{1,80}(\.fifo)?$/.test(name) || name.length > 80) {
      throw new TemplateError(`${logicalId}: queue name '${name}' must be 1-80 alphanumerics, hyphens or underscores (plus .fifo).`);
    }
    let redrive: QueueConfig['redrive'];
    if (p.RedrivePolicy !== undefined) {
      const policy = (typeof p.RedrivePolicy === 'string' ? JSON.parse(p.RedrivePolicy) : p.RedrivePolicy) as Json;
      const maxReceiveCount = Number(policy.maxReceiveCount);
      if (typeof policy.deadLetterTargetArn !== 'string' || !Number.isInteger(maxReceiveCount) || maxReceiveCount < 1 || maxReceiveCount > 1000) {
        throw new TemplateError(`${logicalId}.RedrivePolicy needs deadLetterTargetArn and maxReceiveCount (1-1000): ${JSON.stringify(policy)}`);
      }
      redrive = { deadLetterTargetArn: policy.deadLetterTargetArn, maxReceiveCount };
    }
    return {
      logicalId,
      name,
      arn: String(stack.getAtt(logicalId, 'Arn', logicalId)),
      fifo,
      contentBasedDeduplication: p.ContentBasedDeduplication === true || p.ContentBasedDeduplication === 'true',
      deduplicationScope: p.DeduplicationScope === 'messageGroup' ? 'messageGroup' : 'queue',
      visibilityTimeout: intProperty(p, 'VisibilityTimeout', 30, 0, MAX_VISIBILITY_SECONDS, logicalId),
      delaySeconds: intProperty(p, 'DelaySeconds', 0, 0, MAX_DELAY_SECONDS, logicalId),
      retentionPeriod: intProperty(p, 'MessageRetentionPeriod', 345_600, 60, 1_209_600, logicalId),
      maximumMessageSize: intProperty(p, 'MaximumMessageSize', 262_144, 1024, 1_048_576, logicalId),
      receiveWaitTime: intProperty(p, 'ReceiveMessageWaitTimeSeconds', 0, 0, MAX_WAIT_SECONDS, logicalId),
      redrive,
      kmsMasterKeyId: typeof p.KmsMasterKeyId === 'string' ? p.KmsMasterKeyId : undefined,
      sqsManagedSse: p.SqsManagedSseEnabled !== false && p.KmsMasterKeyId === undefined,
    };
  });
  for (const q of queues) {
    if (!q.redrive) continue;
    const dlq = queues.find((d) => d.arn === q.redrive!.deadLetterTargetArn);
    if (!dlq) {
      throw new TemplateError(
        `${q.logicalId}.RedrivePolicy.deadLetterTargetArn ${q.redrive.deadLetterTargetArn} is not a queue of this template (queues: ${queues.map((x) => x.arn).join(', ')}).`,
      );
    }
    if (dlq.fifo !== q.fifo) throw new TemplateError(`${q.logicalId}: the dead-letter queue of a ${q.fifo ? 'FIFO' : 'standard'} queue must be ${q.fifo ? 'FIFO' : 'standard'} too.`);
  }
  return queues;
}

// ---- messages ----------------------------------------------------------------------------------

export interface MessageAttributeValue {
  DataType: string;
  StringValue?: string;
  /** base64, as on the wire. */
  BinaryValue?: string;
}

export interface StoredMessage {
  messageId: string;
  body: string;
  md5OfBody: string;
  attributes?: Record<string, MessageAttributeValue>;
  senderId: string;
  /** SentTimestamp (ms). Kept when the message moves to a dead-letter queue. */
  sentAt: number;
  /** Start of the retention period (ms): SentTimestamp, or the move to a FIFO dead-letter queue. */
  enqueuedAt: number;
  /** Not deliverable before (ms): delay, then visibility timeouts. */
  visibleAt: number;
  receiveCount: number;
  firstReceiveAt?: number;
  /** Nonce of the latest receipt handle: only that one deletes. */
  receipt?: string;
  groupId?: string;
  deduplicationId?: string;
  sequenceNumber?: string;
  traceHeader?: string;
  deadLetterQueueSourceArn?: string;
  /** Invocations of the local Lambda poller holding it (never delivered meanwhile); not persisted. */
  held?: number;
}

/** One message as it was sent: what `GET <admin>/__sqs/sent` lists. */
export interface SentRecord {
  messageId: string;
  body: string;
  /** The DelaySeconds the message got: the SendMessage entry's own, else the queue's DelaySeconds (unscaled). */
  delaySeconds: number;
  /** Whether the entry carried DelaySeconds itself (false: the queue's default applied). */
  perMessageDelay: boolean;
  /** ISO time of the SendMessage (real time). */
  sentAt: string;
  groupId?: string;
  attributes?: Record<string, MessageAttributeValue>;
}

/** Records kept per queue; the oldest go first beyond this. */
export const SENT_RECORDS_PER_QUEUE = 10_000;

const md5 = (data: Buffer | string) => createHash('md5').update(data).digest('hex');

/** MD5OfMessageAttributes as SQS computes it (names sorted; length-prefixed name, type, transport byte, value). */
export function md5OfMessageAttributes(attributes: Record<string, MessageAttributeValue>): string {
  const hash = createHash('md5');
  const field = (bytes: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    hash.update(length).update(bytes);
  };
  for (const name of Object.keys(attributes).sort()) {
    const a = attributes[name]!;
    field(Buffer.from(name, 'utf8'));
    field(Buffer.from(a.DataType, 'utf8'));
    if (a.BinaryValue !== undefined) {
      hash.update(Buffer.from([2]));
      field(Buffer.from(a.BinaryValue, 'base64'));
    } else {
      hash.update(Buffer.from([1]));
      field(Buffer.from(a.StringValue ?? '', 'utf8'));
    }
  }
  return hash.digest('hex');
}

// Characters SQS accepts in a body: #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF.
const INVALID_BODY = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

function validateAttributes(value: unknown): { attributes?: Record<string, MessageAttributeValue>; size: number } {
  if (value === undefined || value === null) return { size: 0 };
  if (typeof value !== 'object' || Array.isArray(value)) throw new SqsError('InvalidParameterValue', 'MessageAttributes must be a map.');
  const entries = Object.entries(value as Record<string, Json>);
  if (entries.length === 0) return { size: 0 };
  if (entries.length > 10) throw new SqsError('InvalidParameterValue', `Number of message attributes [${entries.length}] exceeds the allowed maximum [10].`);
  const attributes: Record<string, MessageAttributeValue> = {};
  let size = 0;
  for (const [name, a] of entries) {
    if (
      !/^[A-Za-z0-9_.-]{1,256}$/.test(name) ||
      name.startsWith('.') ||
      name.endsWith('.') ||
      name.includes('..') ||
      /^(aws\.|amazon\.)/i.test(name)
    ) {
      throw new SqsError('InvalidParameterValue', `Message (user) attribute '${name}' is invalid: names are up to 256 of A-Za-z0-9_-. with no leading, trailing or double period and no AWS./Amazon. prefix.`);
    }
    const type = typeof a?.DataType === 'string' ? a.DataType : '';
    const base = /^(String|Number|Binary)(\.[A-Za-z0-9_.-]+)?$/.exec(type)?.[1];
    if (!base) throw new SqsError('InvalidParameterValue', `The type of message (user) attribute '${name}' is invalid. You must use only the following supported type prefixes: Binary, Number, String.`);
    if (a.StringListValues?.length || a.BinaryListValues?.length) {
      throw new SqsError('InvalidParameterValue', `Message attribute list values in SendMessage operation are not supported (attribute '${name}').`);
    }
    if (base === 'Binary') {
      if (typeof a.BinaryValue !== 'string' || a.BinaryValue === '') {
        throw new SqsError('InvalidParameterValue', `The message attribute '${name}' with type 'Binary' must use field 'Binary'.`);
      }
      attributes[name] = { DataType: type, BinaryValue: a.BinaryValue };
      size += Buffer.from(a.BinaryValue, 'base64').length;
    } else {
      if (typeof a.StringValue !== 'string' || a.StringValue === '') {
        throw new SqsError('InvalidParameterValue', `The message attribute '${name}' must contain non-empty message attribute value for message attribute type '${base}'.`);
      }
      if (base === 'Number' && !/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(a.StringValue)) {
        throw new SqsError('InvalidParameterValue', `Could not cast message attribute '${name}' value to number.`);
      }
      if (INVALID_BODY.test(a.StringValue)) throw new SqsError('InvalidParameterValue', `Message attribute '${name}' contains characters outside the allowed set.`);
      attributes[name] = { DataType: type, StringValue: a.StringValue };
      size += Buffer.byteLength(a.StringValue);
    }
    size += Buffer.byteLength(name) + Buffer.byteLength(type);
  }
  return { attributes, size };
}

function integerParam(input: Json, name: string, min: number, max: number, reason: string): number | undefined {
  const raw = input[name];
  if (raw === undefined || raw === null) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw invalidValue(name, raw, reason);
  return n;
}

/** Which names of `wanted` select `name`: 'All', '.*', an exact name or a `prefix.*`. */
function selects(wanted: unknown, name: string): boolean {
  if (!Array.isArray(wanted)) return false;
  return wanted.some((w) => w === 'All' || w === '.*' || w === name || (typeof w === 'string' && w.endsWith('.*') && name.startsWith(w.slice(0, -1))));
}

// ---- the queue ----------------------------------------------------------------------------------

export class LocalQueue {
  messages: StoredMessage[] = [];
  /** Every message sent, oldest first (at most SENT_RECORDS_PER_QUEUE). */
  readonly sent: SentRecord[] = [];
  readonly deduplication = new Map<string, { messageId: string; sequenceNumber?: string; expiresAt: number }>();
  private readonly waiters = new Set<() => void>();
  readonly createdAt = Math.floor(Date.now() / 1000);

  constructor(
    readonly config: QueueConfig,
    readonly url: string,
  ) {}

  /** Wakes long polls (a message arrived or became visible). */
  notify(): void {
    for (const wake of [...this.waiters]) wake();
  }

  /** Resolves on notify(), after `ms`, or on abort. */
  wait(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** Drops messages past the retention period. */
  expire(now: number): void {
    const limit = this.config.retentionPeriod * 1000;
    if (this.messages.some((m) => now - m.enqueuedAt > limit)) this.messages = this.messages.filter((m) => now - m.enqueuedAt <= limit);
  }

  /** The next moment a currently invisible message becomes visible (for long polls). */
  nextVisibleAt(now: number): number {
    let next = Number.POSITIVE_INFINITY;
    for (const m of this.messages) if (!m.held && m.visibleAt > now && m.visibleAt < next) next = m.visibleAt;
    return next;
  }

  counts(now: number): { visible: number; inFlight: number; delayed: number } {
    let visible = 0;
    let inFlight = 0;
    let delayed = 0;
    for (const m of this.messages) {
      if (m.held) inFlight++;
      else if (m.visibleAt <= now) visible++;
      else if (m.receiveCount > 0) inFlight++;
      else delayed++;
    }
    return { visible, inFlight, delayed };
  }
}

export interface SqsStats {
  calls: Record<string, number>;
  /**
   * Calls per caller (a function's logical id, `operator`, `admin`, or the access key) and operation. A
   * ReceiveMessage that returned nothing also counts as `ReceiveMessage:empty` (idle long polls of the Lambda
   * pollers: a cost per poller and minute, not per message).
   */
  callsByCaller: Record<string, Record<string, number>>;
  queues: Record<string, { visible: number; inFlight: number; delayed: number; sent: number; received: number; deleted: number; deadLettered: number }>;
}

export class LocalSqs {
  readonly queues = new Map<string, LocalQueue>();
  private readonly calls = new Map<string, number>();
  private readonly callerCalls = new Map<string, Map<string, number>>();
  private readonly counters = new Map<string, { sent: number; received: number; deleted: number; deadLettered: number }>();
  private sequence = 0n;

  constructor(
    configs: QueueConfig[],
    /** `http://127.0.0.1:<port>` */
    readonly baseUrl: string,
    readonly account: string,
    /** Divides DelaySeconds and visibility timeouts (local/cloud.ts `timeScale`). @default 1 */
    readonly timeScale = 1,
  ) {
    if (!(Number.isFinite(timeScale) && timeScale > 0)) throw new Error(`SQS timeScale must be a positive number; got ${timeScale}.`);
    for (const c of configs) {
      this.queues.set(c.name, new LocalQueue(c, `${baseUrl}/${account}/${c.name}`));
      this.counters.set(c.name, { sent: 0, received: 0, deleted: 0, deadLettered: 0 });
    }
  }

  stats(): SqsStats {
    const now = Date.now();
    return {
      calls: Object.fromEntries([...this.calls.entries()].sort()),
      callsByCaller: Object.fromEntries([...this.callerCalls.entries()].sort().map(([caller, ops]) => [caller, Object.fromEntries([...ops.entries()].sort())])),
      queues: Object.fromEntries([...this.queues.values()].map((q) => [q.config.name, { ...q.counts(now), ...this.counters.get(q.config.name)! }])),
    };
  }

  resetStats(): void {
    this.calls.clear();
    this.callerCalls.clear();
  }

  /** Milliseconds of local time for `seconds` of SQS time. */
  private scaled(seconds: number): number {
    return (seconds * 1000) / this.timeScale;
  }

  /**
   * A visibility timeout in local time: scaled, but never below VISIBILITY_FLOOR_MS (or the unscaled value
   * when that is shorter), so that the Lambda poller's hold() lands before the message could be received
   * again. 0 stays 0.
   */
  private visibilityMs(seconds: number): number {
    return Math.max(this.scaled(seconds), Math.min(seconds * 1000, VISIBILITY_FLOOR_MS));
  }

  /** A queue by logical id, name or URL; undefined when none matches. */
  findQueue(id: string): LocalQueue | undefined {
    for (const q of this.queues.values()) if (q.config.logicalId === id || q.config.name === id || q.url === id) return q;
    return undefined;
  }

  /** What was sent to a queue, oldest first: body, requested DelaySeconds, send time. */
  sentTo(queue: LocalQueue, filter: { contains?: string; since?: number } = {}): SentRecord[] {
    return queue.sent.filter((r) => (filter.contains === undefined || r.body.includes(filter.contains)) && (filter.since === undefined || Date.parse(r.sentAt) >= filter.since));
  }

  /**
   * Keeps received messages (by their current receipt handles) out of every receive until the returned
   * release is called: the local Lambda poller holds a batch for as long as its invocation runs. In AWS,
   * CreateEventSourceMapping requires the queue's visibility timeout to be at least the function's timeout,
   * so a message is never redelivered while its invocation runs; a scaled visibility timeout can be shorter
   * than a real run, and the hold keeps that guarantee. After release a message becomes visible when its
   * (scaled) visibility timeout ends, or at once if that has passed: the earliest it could return in AWS.
   */
  hold(queue: LocalQueue, receiptHandles: string[]): () => void {
    const held: StoredMessage[] = [];
    for (const handle of receiptHandles) {
      const { message, current } = this.byReceipt(queue, handle);
      if (message && current) {
        message.held = (message.held ?? 0) + 1;
        held.push(message);
      }
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const m of held) if (m.held && --m.held === 0) delete m.held;
      if (held.length) queue.notify();
    };
  }

  queueByArn(arn: string): LocalQueue | undefined {
    return [...this.queues.values()].find((q) => q.config.arn === arn);
  }

  /** The queue a QueueUrl names (any scheme and host: the path is /<account>/<name>). */
  queueByUrl(url: unknown): LocalQueue {
    if (typeof url !== 'string' || url === '') throw missing('QueueUrl');
    let path: string;
    try {
      path = new URL(url).pathname;
    } catch {
      throw new SqsError('InvalidAddress', `The address ${url} is not valid for this endpoint.`);
    }
    const [, account, name] = path.split('/');
    const queue = name ? this.queues.get(decodeURIComponent(name)) : undefined;
    if (!queue || account !== this.account) {
      throw new SqsError('QueueDoesNotExist', `The specified queue does not exist. (local SQS knows: ${[...this.queues.values()].map((q) => q.url).join(', ') || 'no queues'})`);
    }
    return queue;
  }

  /** Runs one operation; counts it. */
  async handle(operation: string, input: Json, context: RequestContext = { senderId: this.account }): Promise<Json> {
    this.calls.set(operation, (this.calls.get(operation) ?? 0) + 1);
    // Own names only: `X-Amz-Target: <Service>.constructor` must not call Object() on the emulator and answer with its state.
    const op = Object.hasOwn(OPERATIONS, operation) ? OPERATIONS[operation] : undefined;
    if (!op) {
      throw new SqsError(
        'UnsupportedOperation',
        `The local SQS does not implement ${operation}. Implemented: ${Object.keys(OPERATIONS).join(', ')}. Add it to OPERATIONS in local/sqs.ts.`,
      );
    }
    const caller = context.caller ?? context.senderId;
    countCall(this.callerCalls, caller, operation);
    const output = await op(this, input, context);
    if (operation === 'ReceiveMessage' && !(output as { Messages?: unknown[] }).Messages?.length) countCall(this.callerCalls, caller, 'ReceiveMessage:empty');
    return output;
  }

  // ---- send ----

  send(queue: LocalQueue, entry: Json, senderId: string): Json {
    const c = queue.config;
    const body = entry.MessageBody;
    if (typeof body !== 'string' || body === '') throw missing('MessageBody');
    if (INVALID_BODY.test(body)) throw new SqsError('InvalidMessageContents', 'Invalid binary character in the message body: SQS accepts #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF.');
    const { attributes, size: attributesSize } = validateAttributes(entry.MessageAttributes);
    const size = Buffer.byteLength(body) + attributesSize;
    if (size > c.maximumMessageSize) {
      throw new SqsError('InvalidParameterValue', `One or more parameters are invalid. Reason: Message must be shorter than ${c.maximumMessageSize} bytes.`);
    }
    const perMessageDelay = integerParam(entry, 'DelaySeconds', 0, MAX_DELAY_SECONDS, `Must be >= 0 and <= ${MAX_DELAY_SECONDS}, if provided.`);
    const traceHeader = (entry.MessageSystemAttributes as Json | undefined)?.AWSTraceHeader?.StringValue as string | undefined;
    const now = Date.now();
    let groupId: string | undefined;
    let deduplicationId: string | undefined;
    if (c.fifo) {
      if (perMessageDelay !== undefined) {
        throw invalidValue('DelaySeconds', perMessageDelay, 'The request include parameter that is not valid for this queue type.');
      }
      if (typeof entry.MessageGroupId !== 'string' || entry.MessageGroupId === '') throw missing('MessageGroupId');
      groupId = entry.MessageGroupId;
      if (typeof entry.MessageDeduplicationId === 'string' && entry.MessageDeduplicationId !== '') deduplicationId = entry.MessageDeduplicationId;
      else if (c.contentBasedDeduplication) deduplicationId = createHash('sha256').update(body).digest('hex');
      else {
        throw new SqsError('InvalidParameterValue', 'The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly');
      }
      for (const [key, d] of queue.deduplication) if (d.expiresAt <= now) queue.deduplication.delete(key);
      const key = c.deduplicationScope === 'messageGroup' ? `${groupId}\u0000${deduplicationId}` : deduplicationId;
      const seen = queue.deduplication.get(key);
      if (seen) {
        // Accepted, not delivered again.
        return {
          MessageId: seen.messageId,
          MD5OfMessageBody: md5(body),
          ...(attributes ? { MD5OfMessageAttributes: md5OfMessageAttributes(attributes) } : {}),
          SequenceNumber: seen.sequenceNumber,
        };
      }
      const message = this.store(queue, { body, attributes, senderId, now, delaySeconds: c.delaySeconds, groupId, deduplicationId, traceHeader });
      queue.deduplication.set(key, { messageId: message.messageId, sequenceNumber: message.sequenceNumber, expiresAt: now + DEDUPLICATION_WINDOW_MS });
      return this.sendResult(message);
    }
    if (entry.MessageDeduplicationId !== undefined) {
      throw invalidValue('MessageDeduplicationId', entry.MessageDeduplicationId, 'The request include parameter that is not valid for this queue type.');
    }
    // Standard queues accept a MessageGroupId (fair queues); it is returned as an attribute.
    if (typeof entry.MessageGroupId === 'string' && entry.MessageGroupId !== '') groupId = entry.MessageGroupId;
    const message = this.store(queue, { body, attributes, senderId, now, delaySeconds: perMessageDelay ?? c.delaySeconds, perMessageDelay: perMessageDelay !== undefined, groupId, traceHeader });
    return this.sendResult(message);
  }

  private store(
    queue: LocalQueue,
    m: {
      body: string;
      attributes?: Record<string, MessageAttributeValue>;
      senderId: string;
      now: number;
      delaySeconds: number;
      perMessageDelay?: boolean;
      groupId?: string;
      deduplicationId?: string;
      traceHeader?: string;
    },
  ): StoredMessage {
    const message: StoredMessage = {
      messageId: randomUUID(),
      body: m.body,
      md5OfBody: md5(m.body),
      attributes: m.attributes,
      senderId: m.senderId,
      sentAt: m.now,
      enqueuedAt: m.now,
      visibleAt: m.now + this.scaled(m.delaySeconds),
      receiveCount: 0,
      groupId: m.groupId,
      deduplicationId: m.deduplicationId,
      sequenceNumber: queue.config.fifo ? this.nextSequenceNumber(m.now) : undefined,
      traceHeader: m.traceHeader,
    };
    queue.messages.push(message);
    queue.sent.push({
      messageId: message.messageId,
      body: m.body,
      delaySeconds: m.delaySeconds,
      perMessageDelay: m.perMessageDelay ?? false,
      sentAt: new Date(m.now).toISOString(),
      ...(m.groupId ? { groupId: m.groupId } : {}),
      ...(m.attributes ? { attributes: m.attributes } : {}),
    });
    if (queue.sent.length > SENT_RECORDS_PER_QUEUE) queue.sent.splice(0, queue.sent.length - SENT_RECORDS_PER_QUEUE);
    this.counters.get(queue.config.name)!.sent++;
    queue.notify();
    return message;
  }

  private nextSequenceNumber(now: number): string {
    // 20 digits, strictly increasing, like SQS's.
    const candidate = 10n ** 19n + BigInt(now) * 10_000n;
    this.sequence = candidate > this.sequence ? candidate : this.sequence + 1n;
    return this.sequence.toString();
  }

  private sendResult(m: StoredMessage): Json {
    return {
      MessageId: m.messageId,
      MD5OfMessageBody: m.md5OfBody,
      ...(m.attributes ? { MD5OfMessageAttributes: md5OfMessageAttributes(m.attributes) } : {}),
      ...(m.sequenceNumber ? { SequenceNumber: m.sequenceNumber } : {}),
    };
  }

  // ---- receive ----

  async receive(input: Json, signal?: AbortSignal): Promise<Json> {
    const queue = this.queueByUrl(input.QueueUrl);
    const max = integerParam(input, 'MaxNumberOfMessages', 1, 10, 'Must be between 1 and 10, if provided.') ?? 1;
    const visibility = integerParam(input, 'VisibilityTimeout', 0, MAX_VISIBILITY_SECONDS, `Must be >= 0 and <= ${MAX_VISIBILITY_SECONDS}, if provided.`) ?? queue.config.visibilityTimeout;
    const waitSeconds = integerParam(input, 'WaitTimeSeconds', 0, MAX_WAIT_SECONDS, `Must be >= 0 and <= ${MAX_WAIT_SECONDS}, if provided.`) ?? queue.config.receiveWaitTime;
    const systemNames = [...((input.AttributeNames as unknown[] | undefined) ?? []), ...((input.MessageSystemAttributeNames as unknown[] | undefined) ?? [])];
    const deadline = Date.now() + waitSeconds * 1000;
    for (;;) {
      const now = Date.now();
      const taken = this.take(queue, max, visibility, now);
      if (taken.length > 0 || now >= deadline || signal?.aborted) {
        return taken.length ? { Messages: taken.map((m) => this.formatReceived(queue, m, systemNames, input.MessageAttributeNames)) } : {};
      }
      await queue.wait(Math.min(deadline, queue.nextVisibleAt(now)) - now, signal);
    }
  }

  /** Marks up to `max` deliverable messages in flight; redrives those past maxReceiveCount. */
  private take(queue: LocalQueue, max: number, visibility: number, now: number): StoredMessage[] {
    queue.expire(now);
    const c = queue.config;
    const lockedGroups = new Set<string>();
    if (c.fifo) for (const m of queue.messages) if ((m.held || m.visibleAt > now) && m.receiveCount > 0 && m.groupId) lockedGroups.add(m.groupId);
    const taken: StoredMessage[] = [];
    const blockedGroups = new Set<string>();
    for (const m of [...queue.messages]) {
      if (taken.length >= max) break;
      if (c.fifo && m.groupId && (lockedGroups.has(m.groupId) || blockedGroups.has(m.groupId))) continue;
      if (m.held || m.visibleAt > now) {
        // FIFO: a later message of the group must not overtake this one.
        if (c.fifo && m.groupId) blockedGroups.add(m.groupId);
        continue;
      }
      if (c.redrive && m.receiveCount >= c.redrive.maxReceiveCount) {
        this.moveToDeadLetterQueue(queue, m, now);
        continue;
      }
      m.receiveCount++;
      m.firstReceiveAt ??= now;
      m.visibleAt = now + this.visibilityMs(visibility);
      m.receipt = randomBytes(12).toString('base64url');
      taken.push(m);
    }
    if (taken.length) this.counters.get(c.name)!.received += taken.length;
    return taken;
  }

  private moveToDeadLetterQueue(source: LocalQueue, m: StoredMessage, now: number): void {
    const dlq = this.queueByArn(source.config.redrive!.deadLetterTargetArn)!;
    source.messages.splice(source.messages.indexOf(m), 1);
    const moved: StoredMessage = {
      ...m,
      visibleAt: now,
      receipt: undefined,
      deadLetterQueueSourceArn: source.config.arn,
      // Standard queues keep the original enqueue time for retention; FIFO queues reset it.
      enqueuedAt: dlq.config.fifo ? now : m.enqueuedAt,
      sequenceNumber: dlq.config.fifo ? this.nextSequenceNumber(now) : m.sequenceNumber,
    };
    dlq.messages.push(moved);
    this.counters.get(source.config.name)!.deadLettered++;
    dlq.notify();
  }

  private formatReceived(queue: LocalQueue, m: StoredMessage, systemNames: unknown[], attributeNames: unknown): Json {
    const system: Record<string, string | undefined> = {
      SenderId: m.senderId,
      SentTimestamp: String(m.sentAt),
      ApproximateReceiveCount: String(m.receiveCount),
      ApproximateFirstReceiveTimestamp: String(m.firstReceiveAt),
      SequenceNumber: m.sequenceNumber,
      MessageDeduplicationId: m.deduplicationId,
      MessageGroupId: m.groupId,
      AWSTraceHeader: m.traceHeader,
      DeadLetterQueueSourceArn: m.deadLetterQueueSourceArn,
    };
    const attributes = Object.fromEntries(Object.entries(system).filter(([k, v]) => v !== undefined && selects(systemNames, k)));
    const userAttributes = m.attributes
      ? Object.fromEntries(Object.entries(m.attributes).filter(([name]) => selects(attributeNames, name)))
      : {};
    const hasUser = Object.keys(userAttributes).length > 0;
    return {
      MessageId: m.messageId,
      ReceiptHandle: encodeReceipt(queue.config.name, m.messageId, m.receipt!),
      MD5OfBody: m.md5OfBody,
      Body: m.body,
      ...(Object.keys(attributes).length ? { Attributes: attributes } : {}),
      ...(hasUser ? { MD5OfMessageAttributes: md5OfMessageAttributes(userAttributes), MessageAttributes: userAttributes } : {}),
    };
  }

  // ---- delete / visibility ----

  /** The message a receipt handle refers to, undefined if it is gone; throws if the handle is malformed. */
  private byReceipt(queue: LocalQueue, handle: unknown): { message?: StoredMessage; current: boolean } {
    if (typeof handle !== 'string' || handle === '') throw missing('ReceiptHandle');
    const decoded = decodeReceipt(handle);
    if (!decoded || decoded.queue !== queue.config.name) {
      throw new SqsError('ReceiptHandleIsInvalid', `The input receipt handle "${handle}" is not a valid receipt handle.`);
    }
    const message = queue.messages.find((m) => m.messageId === decoded.messageId);
    return { message, current: message?.receipt === decoded.nonce };
  }

  delete(queue: LocalQueue, handle: unknown): void {
    const { message, current } = this.byReceipt(queue, handle);
    // An outdated handle (the message was received again since) succeeds without deleting, as in SQS.
    if (message && current) {
      queue.messages.splice(queue.messages.indexOf(message), 1);
      this.counters.get(queue.config.name)!.deleted++;
      if (queue.config.fifo) queue.notify(); // the group may be unlocked
    }
  }

  changeVisibility(queue: LocalQueue, handle: unknown, timeout: unknown): void {
    const seconds = Number(timeout);
    if (timeout === undefined || timeout === null) throw missing('VisibilityTimeout');
    if (!Number.isInteger(seconds) || seconds < 0 || seconds > MAX_VISIBILITY_SECONDS) {
      throw invalidValue('VisibilityTimeout', timeout, `Must be >= 0 and <= ${MAX_VISIBILITY_SECONDS}, if provided.`);
    }
    const { message, current } = this.byReceipt(queue, handle);
    const now = Date.now();
    if (!message || message.receiveCount === 0 || (message.visibleAt <= now && !message.held)) {
      throw new SqsError('MessageNotInflight', 'The message referred to is not in flight.');
    }
    if (!current) throw invalidValue('ReceiptHandle', handle, 'The receipt handle has expired.');
    message.visibleAt = now + this.visibilityMs(seconds);
    if (seconds === 0) queue.notify();
  }

  // ---- attributes ----

  attributes(queue: LocalQueue, names: unknown): Record<string, string> {
    const c = queue.config;
    const now = Date.now();
    queue.expire(now);
    const counts = queue.counts(now);
    const all: Record<string, string | undefined> = {
      ApproximateNumberOfMessages: String(counts.visible),
      ApproximateNumberOfMessagesNotVisible: String(counts.inFlight),
      ApproximateNumberOfMessagesDelayed: String(counts.delayed),
      CreatedTimestamp: String(queue.createdAt),
      LastModifiedTimestamp: String(queue.createdAt),
      DelaySeconds: String(c.delaySeconds),
      MaximumMessageSize: String(c.maximumMessageSize),
      MessageRetentionPeriod: String(c.retentionPeriod),
      QueueArn: c.arn,
      ReceiveMessageWaitTimeSeconds: String(c.receiveWaitTime),
      VisibilityTimeout: String(c.visibilityTimeout),
      RedrivePolicy: c.redrive ? JSON.stringify(c.redrive) : undefined,
      SqsManagedSseEnabled: String(c.sqsManagedSse),
      KmsMasterKeyId: c.kmsMasterKeyId,
      FifoQueue: c.fifo ? 'true' : undefined,
      ContentBasedDeduplication: c.fifo ? String(c.contentBasedDeduplication) : undefined,
      DeduplicationScope: c.fifo ? c.deduplicationScope : undefined,
      FifoThroughputLimit: c.fifo ? 'perQueue' : undefined,
    };
    const known = new Set([...Object.keys(all), 'All', 'Policy', 'RedriveAllowPolicy', 'KmsDataKeyReusePeriodSeconds', 'SqsManagedSseEnabled']);
    const wanted = Array.isArray(names) ? (names as unknown[]) : [];
    for (const n of wanted) if (typeof n !== 'string' || !known.has(n)) throw new SqsError('InvalidAttributeName', `Unknown Attribute ${String(n)}.`);
    return Object.fromEntries(Object.entries(all).filter(([k, v]) => v !== undefined && (wanted.includes('All') || wanted.includes(k)))) as Record<string, string>;
  }

  // ---- persistence ----

  snapshot(): { version: 1; savedAt: string; queues: Record<string, StoredMessage[]> } {
    return { version: 1, savedAt: new Date().toISOString(), queues: Object.fromEntries([...this.queues.values()].map((q) => [q.config.name, q.messages.map(({ held: _held, ...m }) => m)])) };
  }

  /** Restores a snapshot's messages into the queues that still exist; returns how many. */
  restore(state: ReturnType<LocalSqs['snapshot']>): number {
    let restored = 0;
    for (const [name, messages] of Object.entries(state.queues ?? {})) {
      const queue = this.queues.get(name);
      if (!queue || !Array.isArray(messages)) continue;
      queue.messages = messages;
      restored += messages.length;
    }
    return restored;
  }

  batch<T>(entries: unknown, run: (entry: Json) => T): { Successful: T[]; Failed: Json[] } {
    if (!Array.isArray(entries) || entries.length === 0) throw new SqsError('EmptyBatchRequest', 'There should be at least one entry in the request.');
    if (entries.length > 10) throw new SqsError('TooManyEntriesInBatchRequest', `Maximum number of entries per request are 10. You have sent ${entries.length}.`);
    const ids = new Set<string>();
    for (const e of entries as Json[]) {
      if (typeof e?.Id !== 'string' || !BATCH_ID.test(e.Id)) {
        throw new SqsError('InvalidBatchEntryId', 'A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.');
      }
      if (ids.has(e.Id)) throw new SqsError('BatchEntryIdsNotDistinct', `Id ${e.Id} repeated.`);
      ids.add(e.Id);
    }
    const Successful: T[] = [];
    const Failed: Json[] = [];
    for (const e of entries as Json[]) {
      try {
        Successful.push(run(e));
      } catch (error) {
        if (!(error instanceof SqsError)) throw error;
        Failed.push({ Id: e.Id, SenderFault: error.senderFault, Code: error.queryCode, Message: error.message });
      }
    }
    return { Successful, Failed };
  }
}

function encodeReceipt(queue: string, messageId: string, nonce: string): string {
  return Buffer.from(`payplane-local-sqs\u0000${queue}\u0000${messageId}\u0000${nonce}`, 'utf8').toString('base64');
}

function decodeReceipt(handle: string): { queue: string; messageId: string; nonce: string } | undefined {
  const parts = Buffer.from(handle, 'base64').toString('utf8').split('\u0000');
  if (parts.length !== 4 || parts[0] !== 'payplane-local-sqs') return undefined;
  return { queue: parts[1]!, messageId: parts[2]!, nonce: parts[3]! };
}

export interface RequestContext {
  /** SenderId of sent messages: the caller's access key id (SQS gives the IAM principal's id). */
  senderId: string;
  /** Aborted when the client goes away (ends a long poll). */
  signal?: AbortSignal;
  /** Who calls, for the per-caller counters (`callerName`): the principal's name. @default senderId */
  caller?: string;
}

export type SqsOperation = (sqs: LocalSqs, input: Json, context: RequestContext) => Json | Promise<Json>;

export const OPERATIONS: Record<string, SqsOperation> = {
  SendMessage: (sqs, input, { senderId }) => sqs.send(sqs.queueByUrl(input.QueueUrl), input, senderId),
  SendMessageBatch: (sqs, input, { senderId }) => {
    const queue = sqs.queueByUrl(input.QueueUrl);
    const entries = input.Entries as Json[] | undefined;
    const total = (Array.isArray(entries) ? entries : []).reduce(
      (sum, e) => sum + Buffer.byteLength(String(e?.MessageBody ?? '')) + Buffer.byteLength(JSON.stringify(e?.MessageAttributes ?? {})),
      0,
    );
    if (total > queue.config.maximumMessageSize) {
      throw new SqsError('BatchRequestTooLong', `Batch requests cannot be longer than ${queue.config.maximumMessageSize} bytes. You have sent ${total} bytes.`);
    }
    return sqs.batch(entries, (e) => ({ Id: e.Id, ...sqs.send(queue, e, senderId) }));
  },
  ReceiveMessage: (sqs, input, { signal }) => sqs.receive(input, signal),
  DeleteMessage: (sqs, input) => {
    sqs.delete(sqs.queueByUrl(input.QueueUrl), input.ReceiptHandle);
    return {};
  },
  DeleteMessageBatch: (sqs, input) => {
    const queue = sqs.queueByUrl(input.QueueUrl);
    return sqs.batch(input.Entries, (e) => {
      sqs.delete(queue, e.ReceiptHandle);
      return { Id: e.Id };
    });
  },
  ChangeMessageVisibility: (sqs, input) => {
    sqs.changeVisibility(sqs.queueByUrl(input.QueueUrl), input.ReceiptHandle, input.VisibilityTimeout);
    return {};
  },
  GetQueueUrl: (sqs, input) => {
    if (typeof input.QueueName !== 'string' || input.QueueName === '') throw missing('QueueName');
    const queue = sqs.queues.get(input.QueueName);
    const owner = input.QueueOwnerAWSAccountId ?? sqs.account;
    if (!queue || owner !== sqs.account) throw new SqsError('QueueDoesNotExist', 'The specified queue does not exist.');
    return { QueueUrl: queue.url };
  },
  GetQueueAttributes: (sqs, input) => {
    const attributes = sqs.attributes(sqs.queueByUrl(input.QueueUrl), input.AttributeNames);
    return Object.keys(attributes).length ? { Attributes: attributes } : {};
  },
};

// ---- HTTP endpoint -------------------------------------------------------------------------------

export interface SqsEndpoint {
  url: string;
  sqs: LocalSqs;
  /** logical id → queue URL */
  queueUrls: Record<string, string>;
  stop(): Promise<void>;
}

export interface SqsOptions {
  port?: number;
  /** Snapshot file for a persistent cloud (.payplane/sqs/messages.json); none = in memory. */
  stateFile?: string;
  log?: (line: string) => void;
  /** Checks every call against the template's IAM policies (identity and queue policies). */
  iam?: LocalIam;
  /** Divides DelaySeconds and visibility timeouts. @default 1 */
  timeScale?: number;
}

/** Starts the endpoint and points `Ref`/`GetAtt QueueUrl` of every queue at it. */
export async function startSqs(stack: LocalStack, options: SqsOptions = {}): Promise<SqsEndpoint> {
  const configs = queueConfigs(stack);
  let sqs: LocalSqs | undefined;
  const server: LocalServer = await listen((req, res) =>
    handleSqsRequest(sqs!, req, res, options.iam).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { __type: 'com.amazonaws.sqs#InternalError', message: String(error) }, { 'x-amzn-query-error': 'InternalError;Receiver' });
    }),
  options.port ?? 0);
  sqs = new LocalSqs(configs, server.url, stack.account, options.timeScale);
  const queueUrls: Record<string, string> = {};
  for (const q of sqs.queues.values()) {
    stack.setRef(q.config.logicalId, q.url);
    stack.setAttribute(q.config.logicalId, 'QueueUrl', q.url);
    queueUrls[q.config.logicalId] = q.url;
  }
  if (options.stateFile && existsSync(options.stateFile)) {
    try {
      const restored = sqs.restore(JSON.parse(readFileSync(options.stateFile, 'utf8')));
      if (restored) options.log?.(`SQS: restored ${restored} message(s) from ${options.stateFile}`);
    } catch (error) {
      options.log?.(`SQS: ignoring unreadable ${options.stateFile}: ${(error as Error).message}`);
    }
  }
  const stop = async () => {
    await server.close();
    if (options.stateFile) {
      mkdirSync(dirname(options.stateFile), { recursive: true });
      const tmp = `${options.stateFile}.tmp`;
      writeFileSync(tmp, JSON.stringify(sqs!.snapshot()));
      renameSync(tmp, options.stateFile);
    }
    // Long polls still waiting return empty.
    for (const q of sqs!.queues.values()) q.notify();
  };
  return { url: server.url, sqs, queueUrls, stop };
}

const JSON_CONTENT_TYPE = 'application/x-amz-json-1.0';

/** The IAM action of each operation: batches are authorized as their single-message action, as in SQS. */
const IAM_ACTIONS: Record<string, string> = {
  SendMessageBatch: 'sqs:SendMessage',
  DeleteMessageBatch: 'sqs:DeleteMessage',
  ChangeMessageVisibilityBatch: 'sqs:ChangeMessageVisibility',
};

/** `sqs:<Operation>` on the queue the request names (QueueUrl, or QueueName for GetQueueUrl). */
export function sqsAccessRequest(sqs: LocalSqs, operation: string, input: Json): AccessRequest | undefined {
  return sqsAccessRequests(sqs, operation, input)[0];
}

/** What SQS does with the caller's credentials on a queue's customer-managed key, per operation. */
const QUEUE_KEY_ACTIONS: Record<string, string[]> = {
  SendMessage: ['kms:GenerateDataKey', 'kms:Decrypt'],
  SendMessageBatch: ['kms:GenerateDataKey', 'kms:Decrypt'],
  ReceiveMessage: ['kms:Decrypt'],
};

/**
 * Every IAM request of one call: `sqs:<Operation>` on the queue, and for a queue encrypted with a
 * customer-managed key what SQS asks KMS in the caller's name (producers kms:GenerateDataKey and
 * kms:Decrypt, consumers kms:Decrypt) with `kms:ViaService = sqs.<region>.amazonaws.com` and the
 * `aws:sqs:arn` encryption context. The local SQS never calls KMS, so the request is checked in its
 * place, as the DynamoDB proxy does for encrypted tables. AWS managed keys (`alias/aws/sqs`) need no grant.
 */
export function sqsAccessRequests(sqs: LocalSqs, operation: string, input: Json): AccessRequest[] {
  const action = IAM_ACTIONS[operation] ?? `sqs:${operation}`;
  if (operation === 'ListQueues') return [{ action, resource: '*' }];
  let queue: LocalQueue | undefined;
  try {
    queue =
      operation === 'GetQueueUrl'
        ? [...sqs.queues.values()].find((q) => q.config.name === input.QueueName)
        : sqs.queueByUrl(input.QueueUrl);
  } catch {
    return []; // the operation answers with SQS's own error
  }
  if (!queue) return [];
  const out: AccessRequest[] = [{ action, resource: queue.config.arn }];
  const key = queueKeyArn(queue.config, sqs.account);
  if (key) {
    const region = queue.config.arn.split(':')[3];
    for (const kmsAction of QUEUE_KEY_ACTIONS[operation] ?? []) {
      out.push({
        action: kmsAction,
        resource: key,
        context: { 'kms:ViaService': `sqs.${region}.amazonaws.com`, 'kms:CallerAccount': sqs.account, 'kms:EncryptionContext:aws:sqs:arn': queue.config.arn },
      });
    }
  }
  return out;
}

/** The ARN of a queue's customer-managed key (KmsMasterKeyId: an ARN or a key id); none for SQS-managed or AWS managed keys. */
function queueKeyArn(config: QueueConfig, account: string): string | undefined {
  const id = config.kmsMasterKeyId;
  if (!id || /(^|:)alias\/aws\//.test(id)) return undefined;
  if (id.startsWith('arn:')) return id;
  const region = config.arn.split(':')[3];
  return id.startsWith('alias/') ? `arn:aws:kms:${region}:${account}:${id}` : `arn:aws:kms:${region}:${account}:key/${id}`;
}

async function handleSqsRequest(sqs: LocalSqs, req: IncomingMessage, res: ServerResponse, iam?: LocalIam): Promise<void> {
  const headers: Record<string, string> = { 'x-amzn-RequestId': randomUUID(), 'Content-Type': JSON_CONTENT_TYPE };
  const fail = (error: SqsError) =>
    sendJson(res, error.status, { __type: `com.amazonaws.sqs#${error.type}`, message: error.message }, {
      ...headers,
      'x-amzn-query-error': `${error.queryCode};${error.senderFault ? 'Sender' : 'Receiver'}`,
    });
  if (req.method === 'GET' && req.url === '/__stats') {
    sendJson(res, 200, sqs.stats());
    return;
  }
  const target = req.headers['x-amz-target'];
  const raw = await readBody(req, 2 * 1024 * 1024);
  if (req.method !== 'POST' || typeof target !== 'string' || !target.startsWith('AmazonSQS.')) {
    const query = /(^|&)Action=/.test(raw.toString('utf8')) || /[?&]Action=/.test(req.url ?? '');
    fail(
      new SqsError(
        'InvalidAction',
        query
          ? 'The local SQS speaks the AWS JSON protocol only (X-Amz-Target: AmazonSQS.<Operation>), not the Query protocol (Action=…). Use @aws-sdk/client-sqs ≥ 3.447 or AWS CLI v2.'
          : 'Expected POST / with X-Amz-Target: AmazonSQS.<Operation> and an application/x-amz-json-1.0 body.',
      ),
    );
    return;
  }
  let input: Json;
  try {
    input = raw.length ? (JSON.parse(raw.toString('utf8')) as Json) : {};
    if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new Error('not an object');
  } catch {
    fail(new SqsError('SerializationException', 'The request body is not a JSON object.'));
    return;
  }
  const operation = target.slice('AmazonSQS.'.length);
  const { refuse } = iam ? await iam.check(req.headers, sqsAccessRequests(sqs, operation, input)) : {};
  if (refuse) {
    const [type, code] = refuse.unknownKey ? ['InvalidClientTokenId', 'InvalidClientTokenId'] : ['AccessDeniedException', 'AccessDenied'];
    sendJson(res, 403, { __type: `com.amazon.coral.service#${type}`, message: refuse.unknownKey ? INVALID_TOKEN_MESSAGE : refuse.message }, { ...headers, 'x-amzn-query-error': `${code};Sender` });
    return;
  }
  // The sender is the caller's access key id (SigV4 Credential=…), SQS's SenderId stand-in.
  const senderId = /Credential=([^/,\s]+)/.exec(String(req.headers.authorization ?? ''))?.[1] ?? sqs.account;
  // A client that goes away (aborted long poll, stopped poller) stops waiting.
  const abort = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  try {
    const output = await sqs.handle(operation, input, { senderId, signal: abort.signal, caller: callerName(req.headers, iam) });
    if (!res.destroyed) sendJson(res, 200, output, headers);
  } catch (error) {
    if (error instanceof SqsError) fail(error);
    else sendJson(res, 500, { __type: 'com.amazonaws.sqs#InternalError', message: (error as Error).message }, { ...headers, 'x-amzn-query-error': 'InternalError;Receiver' });
  }
}
