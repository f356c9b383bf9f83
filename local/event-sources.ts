import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  ExpiredIteratorException,
  GetRecordsCommand,
  GetShardIteratorCommand,
  TrimmedDataAccessException,
  type _Record as StreamRecord,
  type AttributeValue as StreamAttributeValue,
  type Shard,
} from '@aws-sdk/client-dynamodb-streams';
import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import { LOCAL_CREDENTIALS } from './dynamodb';
import type { LocalIam } from './iam';
import { compilePattern, matchesPattern, type EventPattern } from './event-patterns';
import type { InvokeResult, LambdaRuntime } from './lambda';
import type { LocalSqs } from './sqs';
import { TemplateError, type LocalStack } from './template';

/**
 * Lambda event source mappings (AWS::Lambda::EventSourceMapping): pollers that read a source and
 * invoke a function synchronously with batches, as the Lambda service does.
 *
 * One class per source kind, chosen by the EventSourceArn (SOURCE_KINDS below):
 * - SqsEventSource (`arn:aws:sqs:…`): long-polls the local SQS through @aws-sdk/client-sqs, invokes with
 *   an SQS event, deletes what succeeded, leaves failures to the visibility timeout (and so to the
 *   queue's RedrivePolicy), honours ReportBatchItemFailures, BatchSize, MaximumBatchingWindowInSeconds,
 *   ScalingConfig.MaximumConcurrency and FilterCriteria (non-matching messages are deleted, as in AWS).
 * - DynamoDbStreamEventSource (`arn:aws:dynamodb:…/stream/…`): reads the table's stream from DynamoDB
 *   Local shard by shard (parents first), invokes with DynamoDB stream records in order, retries a failed
 *   batch (MaximumRetryAttempts, MaximumRecordAgeInSeconds, BisectBatchOnFunctionError,
 *   ReportBatchItemFailures checkpointing at the lowest failed sequence number), then sends the batch's
 *   description to DestinationConfig.OnFailure (an SQS queue) and moves on. Filtered-out records are
 *   skipped. In a persistent cloud the shard checkpoints survive restarts.
 *
 * Adding a source (Kinesis, Kafka…) = one class implementing EventSource plus an entry in SOURCE_KINDS.
 */

type Json = Record<string, any>;

export interface MappingConfig {
  logicalId: string;
  functionLogicalId: string;
  sourceArn: string;
  enabled: boolean;
  batchSize: number;
  batchingWindowMs: number;
  reportBatchItemFailures: boolean;
  filters: EventPattern[];
  /** All properties, resolved (source-specific ones: StartingPosition, DestinationConfig…). */
  properties: Json;
}

export interface SourceContext {
  stack: LocalStack;
  runtime: LambdaRuntime;
  /** AWS_ENDPOINT_URL_<SERVICE> of the running services. */
  endpoints: Record<string, string>;
  log: (line: string) => void;
  /** Shard checkpoints between runs (persistent cloud only). */
  checkpoints?: CheckpointStore;
  /** Pollers read (and on-failure destinations are sent to) with the function's role, as Lambda does. */
  iam?: LocalIam;
  /**
   * Divides the pollers' timers: batching windows (MaximumBatchingWindowInSeconds), the stream retry
   * backoff and MaximumRecordAgeInSeconds. Long polls and idle polling are not (they only decide how soon
   * a poller notices work). @default 1
   */
  timeScale?: number;
  /** The local SQS itself: the SQS poller holds a batch invisible while its invocation runs (LocalSqs.hold). */
  sqs?: LocalSqs;
}

function pollerCredentials(ctx: SourceContext, mapping: MappingConfig) {
  return ctx.iam ? ctx.iam.credentialsFor(mapping.functionLogicalId) : LOCAL_CREDENTIALS;
}

/** What one batch did; also the answer of a manual trigger. */
export interface BatchOutcome {
  mapping: string;
  records: number;
  /** Records dropped by FilterCriteria (SQS: deleted; streams: skipped). */
  filtered: number;
  invoked: boolean;
  /** Records the function handled (deleted / checkpointed). */
  succeeded: number;
  /** Records left for a retry (SQS: visibility timeout; streams: retried, then OnFailure). */
  failed: number;
  error?: string;
}

export interface EventSource {
  readonly mapping: MappingConfig;
  /** Checks the source exists and is usable (fails like CreateEventSourceMapping would). */
  init(): Promise<void>;
  /** Starts polling in the background. */
  start(): void;
  /** Reads and processes one batch now, without waiting for records. */
  pollOnce(): Promise<BatchOutcome>;
  stats(): Json;
  stop(): Promise<void>;
}

interface SourceKind {
  name: string;
  matches(arn: string): boolean;
  /** BatchSize default and maximum. */
  batchSize: { default: number; max: number };
  create(mapping: MappingConfig, ctx: SourceContext): EventSource;
}

export const SOURCE_KINDS: SourceKind[] = [
  {
    name: 'sqs',
    matches: (arn) => /^arn:[^:]+:sqs:/.test(arn),
    batchSize: { default: 10, max: 10_000 },
    create: (mapping, ctx) => new SqsEventSource(mapping, ctx),
  },
  {
    name: 'dynamodb-streams',
    matches: (arn) => /^arn:[^:]+:dynamodb:[^:]*:[^:]*:table\/[^/]+\/stream\//.test(arn),
    batchSize: { default: 100, max: 10_000 },
    create: (mapping, ctx) => new DynamoDbStreamEventSource(mapping, ctx),
  },
];

/** Reads the template's event source mappings; those with a source kind not emulated are logged and skipped. */
export function eventSourceMappings(stack: LocalStack, log: (line: string) => void = () => {}): { mapping: MappingConfig; kind: SourceKind }[] {
  const out: { mapping: MappingConfig; kind: SourceKind }[] = [];
  for (const [logicalId, r] of stack.resourcesOfType('AWS::Lambda::EventSourceMapping')) {
    const p = (stack.resolve(r.Properties ?? {}, logicalId) ?? {}) as Json;
    const sourceArn = typeof p.EventSourceArn === 'string' ? p.EventSourceArn : '';
    const kind = SOURCE_KINDS.find((k) => k.matches(sourceArn));
    if (!kind) {
      log(`Event source mapping ${logicalId}: source ${sourceArn || '(none)'} is not emulated (emulated: ${SOURCE_KINDS.map((k) => k.name).join(', ')}); skipped.`);
      continue;
    }
    const functionName = String(p.FunctionName ?? '');
    const functionLogicalId =
      stack.functionByArn(functionName.replace(/:(\$LATEST|\d+|[A-Za-z][\w-]*)$/, '')) ??
      stack.resourcesOfType('AWS::Lambda::Function').find(([id]) => stack.functionName(id) === functionName || id === functionName)?.[0];
    if (!functionLogicalId) throw new TemplateError(`${logicalId}.FunctionName ${functionName} is not a function of the template.`);
    const batchSize = p.BatchSize === undefined ? kind.batchSize.default : Number(p.BatchSize);
    const batchingWindowMs = p.MaximumBatchingWindowInSeconds === undefined ? 0 : Number(p.MaximumBatchingWindowInSeconds) * 1000;
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > kind.batchSize.max) {
      throw new TemplateError(`${logicalId}.BatchSize ${String(p.BatchSize)} is out of range for ${kind.name} (1-${kind.batchSize.max}).`);
    }
    if (!Number.isInteger(batchingWindowMs / 1000) || batchingWindowMs < 0 || batchingWindowMs > 300_000) {
      throw new TemplateError(`${logicalId}.MaximumBatchingWindowInSeconds must be an integer from 0 to 300.`);
    }
    if (kind.name === 'sqs' && batchSize > 10 && batchingWindowMs === 0) {
      // CreateEventSourceMapping's own rule.
      throw new TemplateError(`${logicalId}: Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10 (BatchSize ${batchSize}).`);
    }
    const filters = ((p.FilterCriteria as Json | undefined)?.Filters as Json[] | undefined) ?? [];
    if (filters.length > 5) throw new TemplateError(`${logicalId}.FilterCriteria: at most 5 filters.`);
    out.push({
      kind,
      mapping: {
        logicalId,
        functionLogicalId,
        sourceArn,
        enabled: p.Enabled !== false && p.Enabled !== 'false',
        batchSize,
        batchingWindowMs,
        reportBatchItemFailures: Array.isArray(p.FunctionResponseTypes) && p.FunctionResponseTypes.includes('ReportBatchItemFailures'),
        filters: filters.map((f, i) => compilePattern(f.Pattern, `${logicalId}.FilterCriteria.Filters[${i}]`)),
        properties: p,
      },
    });
  }
  return out;
}

/** Whether an event passes FilterCriteria (no filters = everything passes; several = any). */
export function passesFilters(filters: EventPattern[], event: unknown): boolean {
  return filters.length === 0 || filters.some((f) => matchesPattern(f, event));
}

/**
 * Reads a partial batch response. Complete success: no ReportBatchItemFailures, a null/empty response
 * or an empty/null batchItemFailures. Complete failure: a function error, or an entry with a missing,
 * empty or unknown itemIdentifier (as documented for SQS and streams). Otherwise: the listed ids.
 */
export function batchItemFailures(result: InvokeResult, ids: string[], reportBatchItemFailures: boolean): { all: boolean; failed: Set<string>; error?: string } {
  if (!result.ok) return { all: true, failed: new Set(ids), error: `${result.error.errorType}: ${result.error.errorMessage}` };
  if (!reportBatchItemFailures) return { all: false, failed: new Set() };
  const payload = result.payload as Json | null | undefined;
  const list = payload && typeof payload === 'object' ? payload.batchItemFailures : undefined;
  if (list === undefined || list === null) return { all: false, failed: new Set() };
  const whole = (why: string) => ({ all: true, failed: new Set(ids), error: `invalid partial batch response: ${why}` });
  if (!Array.isArray(list)) return whole('batchItemFailures is not a list');
  const failed = new Set<string>();
  for (const item of list) {
    const id = item && typeof item === 'object' ? (item as Json).itemIdentifier : undefined;
    if (typeof id !== 'string' || id === '') return whole(`itemIdentifier missing or empty in ${JSON.stringify(item)}`);
    if (!ids.includes(id)) return whole(`itemIdentifier ${id} is not in the batch`);
    failed.add(id);
  }
  return { all: false, failed };
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

const isAbort = (error: unknown) => (error as Error)?.name === 'AbortError';

/** Counters every source keeps. */
class Counters {
  batches = 0;
  records = 0;
  filtered = 0;
  succeeded = 0;
  failed = 0;
  functionErrors = 0;
  lastError?: string;

  add(o: BatchOutcome): BatchOutcome {
    if (o.invoked) this.batches++;
    this.records += o.records;
    this.filtered += o.filtered;
    this.succeeded += o.succeeded;
    this.failed += o.failed;
    if (o.error) {
      this.functionErrors++;
      this.lastError = o.error;
    }
    return o;
  }
}

// ---- SQS -------------------------------------------------------------------------------------------

export class SqsEventSource implements EventSource {
  private readonly client: SQSClient;
  private queueUrl = '';
  private fifo = false;
  private readonly abort = new AbortController();
  private readonly loops: Promise<void>[] = [];
  private readonly counters = new Counters();
  private stopped = false;
  private readonly pollers: number;
  /** MaximumBatchingWindowInSeconds in local time. */
  private readonly windowMs: number;

  constructor(
    readonly mapping: MappingConfig,
    private readonly ctx: SourceContext,
  ) {
    this.windowMs = mapping.batchingWindowMs / (ctx.timeScale ?? 1);
    const endpoint = ctx.endpoints.AWS_ENDPOINT_URL_SQS;
    if (!endpoint) throw new Error(`Event source mapping ${mapping.logicalId} reads ${mapping.sourceArn}, but the local cloud runs no SQS (no AWS::SQS::Queue in the template?).`);
    this.client = new SQSClient({ endpoint, region: ctx.stack.region, credentials: pollerCredentials(ctx, mapping), maxAttempts: 2 });
    const max = Number((mapping.properties.ScalingConfig as Json | undefined)?.MaximumConcurrency);
    // Lambda starts with 5 concurrent pollers; locally 2 keep up unless ScalingConfig asks otherwise.
    this.pollers = Number.isInteger(max) && max >= 2 ? Math.min(max, 10) : 2;
  }

  async init(): Promise<void> {
    const [, , , region, account, name] = this.mapping.sourceArn.split(':');
    if (region !== this.ctx.stack.region) throw new Error(`${this.mapping.logicalId}: queue ${this.mapping.sourceArn} is in another region.`);
    this.queueUrl = (await this.client.send(new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account }))).QueueUrl!;
    const { Attributes = {} } = await this.client.send(new GetQueueAttributesCommand({ QueueUrl: this.queueUrl, AttributeNames: ['All'] }));
    this.fifo = Attributes.FifoQueue === 'true';
    const fn = this.ctx.runtime.get(this.mapping.functionLogicalId).definition;
    const visibility = Number(Attributes.VisibilityTimeout);
    if (visibility < fn.timeoutSeconds) {
      // CreateEventSourceMapping refuses this, so a deploy would fail.
      throw new TemplateError(
        `${this.mapping.logicalId}: Queue visibility timeout: ${visibility} seconds is less than Function timeout: ${fn.timeoutSeconds} seconds (${name} → ${fn.logicalId}).`,
      );
    }
    if (this.fifo && this.mapping.batchSize > 10) throw new TemplateError(`${this.mapping.logicalId}: BatchSize of a FIFO queue is at most 10.`);
  }

  start(): void {
    if (!this.mapping.enabled) return;
    for (let i = 0; i < this.pollers; i++) this.loops.push(this.loop());
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        const batch = await this.collect(20);
        if (batch.length > 0) await this.process(batch);
      } catch (error) {
        if (this.stopped || isAbort(error)) return;
        this.ctx.log(`Event source ${this.mapping.logicalId}: ${(error as Error).message}`);
        await sleep(1000, this.abort.signal);
      }
    }
  }

  /** Receives up to BatchSize messages: one long poll, then more until the batching window ends. */
  private async collect(waitSeconds: number): Promise<Message[]> {
    const batch: Message[] = [];
    let windowEnd = 0;
    for (;;) {
      const remaining = windowEnd ? windowEnd - Date.now() : 0;
      const { Messages = [] } = await this.client.send(
        new ReceiveMessageCommand({
          QueueUrl: this.queueUrl,
          MaxNumberOfMessages: Math.min(10, this.mapping.batchSize - batch.length),
          WaitTimeSeconds: batch.length === 0 ? waitSeconds : Math.min(20, Math.max(0, Math.floor(remaining / 1000))),
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
        { abortSignal: this.abort.signal },
      );
      batch.push(...Messages);
      if (batch.length === 0 || batch.length >= this.mapping.batchSize || this.mapping.batchingWindowMs === 0 || this.stopped) return batch;
      // The window opens with the first message.
      windowEnd ||= Date.now() + this.windowMs;
      const left = windowEnd - Date.now();
      if (left <= 0) return batch;
      if (left < 1000 && Messages.length === 0) await sleep(left, this.abort.signal);
    }
  }

  private async process(messages: Message[]): Promise<BatchOutcome> {
    const arn = this.mapping.sourceArn;
    const records = messages.map((m) => sqsRecord(m, arn, this.ctx.stack.region));
    const kept = records.filter((r) => passesFilters(this.mapping.filters, filterView(r)));
    const filteredOut = records.filter((r) => !kept.includes(r));
    const outcome: BatchOutcome = { mapping: this.mapping.logicalId, records: records.length, filtered: filteredOut.length, invoked: false, succeeded: 0, failed: 0 };
    const toDelete = [...filteredOut];
    // Invisible until the invocation has ended and its successes are deleted, however short a scaled
    // visibility timeout is (LocalSqs.hold): as in AWS, where visibility ≥ the function's timeout.
    const release = this.ctx.sqs?.hold(this.ctx.sqs.queueByUrl(this.queueUrl), messages.map((m) => m.ReceiptHandle!));
    try {
      await this.invokeBatch(kept, outcome, toDelete);
      await this.deleteAll(toDelete);
    } finally {
      release?.();
    }
    return this.counters.add(outcome);
  }

  private async invokeBatch(kept: SqsRecord[], outcome: BatchOutcome, toDelete: SqsRecord[]): Promise<void> {
    if (kept.length > 0) {
      const result = await this.ctx.runtime.invoke(this.mapping.functionLogicalId, { Records: kept });
      outcome.invoked = true;
      const { failed, error } = batchItemFailures(result, kept.map((r) => r.messageId), this.mapping.reportBatchItemFailures);
      toDelete.push(...kept.filter((r) => !failed.has(r.messageId)));
      outcome.succeeded = kept.length - failed.size;
      outcome.failed = failed.size;
      if (error) {
        outcome.error = error;
        this.ctx.log(`Event source ${this.mapping.logicalId} → ${this.mapping.functionLogicalId}: batch of ${kept.length} failed (${error}); the messages return after the visibility timeout.`);
      }
    }
  }

  private async deleteAll(records: SqsRecord[]): Promise<void> {
    for (let i = 0; i < records.length; i += 10) {
      const chunk = records.slice(i, i + 10);
      const { Failed = [] } = await this.client.send(
        new DeleteMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: chunk.map((r, j) => ({ Id: String(j), ReceiptHandle: r.receiptHandle })) }),
      );
      for (const f of Failed) this.ctx.log(`Event source ${this.mapping.logicalId}: could not delete a message: ${f.Code} ${f.Message}`);
    }
  }

  async pollOnce(): Promise<BatchOutcome> {
    const batch = await this.collect(0);
    if (batch.length === 0) return { mapping: this.mapping.logicalId, records: 0, filtered: 0, invoked: false, succeeded: 0, failed: 0 };
    return this.process(batch);
  }

  stats(): Json {
    return { logicalId: this.mapping.logicalId, source: this.mapping.sourceArn, function: this.mapping.functionLogicalId, enabled: this.mapping.enabled, pollers: this.mapping.enabled ? this.pollers : 0, ...this.counters };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    // A batch being processed finishes (its function may still be running); don't wait for long.
    await Promise.race([Promise.allSettled(this.loops), sleep(2000)]);
    this.client.destroy();
  }
}

export interface SqsRecord {
  messageId: string;
  receiptHandle: string;
  body: string;
  attributes: Record<string, string>;
  messageAttributes: Record<string, { stringValue?: string; binaryValue?: string; stringListValues: string[]; binaryListValues: string[]; dataType: string }>;
  md5OfMessageAttributes?: string;
  md5OfBody: string;
  eventSource: 'aws:sqs';
  eventSourceARN: string;
  awsRegion: string;
}

/** One record of the SQS event Lambda sends. */
export function sqsRecord(m: Message, eventSourceARN: string, awsRegion: string): SqsRecord {
  return {
    messageId: m.MessageId!,
    receiptHandle: m.ReceiptHandle!,
    body: m.Body ?? '',
    attributes: { ...(m.Attributes as Record<string, string> | undefined) },
    messageAttributes: Object.fromEntries(
      Object.entries(m.MessageAttributes ?? {}).map(([name, a]) => [
        name,
        {
          ...(a.StringValue !== undefined ? { stringValue: a.StringValue } : {}),
          ...(a.BinaryValue !== undefined ? { binaryValue: Buffer.from(a.BinaryValue).toString('base64') } : {}),
          stringListValues: [],
          binaryListValues: [],
          dataType: a.DataType!,
        },
      ]),
    ),
    ...(m.MD5OfMessageAttributes ? { md5OfMessageAttributes: m.MD5OfMessageAttributes } : {}),
    md5OfBody: m.MD5OfBody!,
    eventSource: 'aws:sqs',
    eventSourceARN,
    awsRegion,
  };
}

/** What SQS filter patterns see: the record, with a JSON body parsed (a non-JSON body stays a string). */
function filterView(r: SqsRecord): Json {
  let body: unknown = r.body;
  try {
    body = JSON.parse(r.body);
  } catch {
    // plain text
  }
  return { ...r, body };
}

// ---- DynamoDB Streams ------------------------------------------------------------------------------

/** Last processed sequence number per stream ARN and shard, per mapping; a JSON file in a persistent cloud. */
export class CheckpointStore {
  private data: Record<string, Record<string, Record<string, string>>> = {};

  constructor(private readonly file: string) {
    try {
      if (existsSync(file)) this.data = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      this.data = {};
    }
  }

  get(mapping: string, streamArn: string): Record<string, string> {
    return this.data[mapping]?.[streamArn] ?? {};
  }

  set(mapping: string, streamArn: string, shardId: string, sequenceNumber: string): void {
    // One stream per mapping: checkpoints of an older stream (table recreated) are dropped.
    this.data[mapping] = { [streamArn]: { ...this.get(mapping, streamArn), [shardId]: sequenceNumber } };
  }

  save(): void {
    mkdirSync(dirname(this.file), { recursive: true });
    writeFileSync(`${this.file}.tmp`, JSON.stringify(this.data, null, 1));
    renameSync(`${this.file}.tmp`, this.file);
  }
}

interface ShardState {
  id: string;
  parentId?: string;
  iterator?: string | null;
  /** No more records will come (closed shard read to its end). */
  done: boolean;
}

export class DynamoDbStreamEventSource implements EventSource {
  private readonly client: DynamoDBStreamsClient;
  private readonly shards = new Map<string, ShardState>();
  private readonly abort = new AbortController();
  private readonly counters = new Counters();
  private loopPromise?: Promise<void>;
  private stopped = false;
  private busy: Promise<unknown> = Promise.resolve();
  private lastDescribe = 0;
  private readonly startingPosition: 'TRIM_HORIZON' | 'LATEST';
  private readonly maxRetries: number;
  private readonly maxRecordAgeMs: number;
  private readonly timeScale: number;
  private readonly bisect: boolean;
  private readonly onFailure?: string;
  private onFailureClient?: SQSClient;
  retriesExhausted = 0;

  constructor(
    readonly mapping: MappingConfig,
    private readonly ctx: SourceContext,
  ) {
    const endpoint = ctx.endpoints.AWS_ENDPOINT_URL_DYNAMODB_STREAMS;
    if (!endpoint) throw new Error(`Event source mapping ${mapping.logicalId} reads ${mapping.sourceArn}, but no DynamoDB Streams endpoint is running.`);
    if (mapping.sourceArn.includes('/stream/1970-01-01')) {
      throw new TemplateError(`${mapping.logicalId} reads the stream of a table that has none: give the table a StreamSpecification (CDK: stream: StreamViewType.NEW_AND_OLD_IMAGES).`);
    }
    this.client = new DynamoDBStreamsClient({ endpoint, region: ctx.stack.region, credentials: pollerCredentials(ctx, mapping), maxAttempts: 2 });
    const p = mapping.properties;
    const position = String(p.StartingPosition ?? '');
    if (position !== 'TRIM_HORIZON' && position !== 'LATEST') {
      throw new TemplateError(`${mapping.logicalId}.StartingPosition must be TRIM_HORIZON or LATEST for a DynamoDB stream (got ${position || 'nothing'}).`);
    }
    this.startingPosition = position;
    this.maxRetries = p.MaximumRetryAttempts === undefined ? -1 : Number(p.MaximumRetryAttempts);
    this.timeScale = ctx.timeScale ?? 1;
    this.maxRecordAgeMs =
      p.MaximumRecordAgeInSeconds === undefined || Number(p.MaximumRecordAgeInSeconds) === -1
        ? Number.POSITIVE_INFINITY
        : (Number(p.MaximumRecordAgeInSeconds) * 1000) / this.timeScale;
    this.bisect = p.BisectBatchOnFunctionError === true || p.BisectBatchOnFunctionError === 'true';
    const destination = (p.DestinationConfig as Json | undefined)?.OnFailure?.Destination;
    if (typeof destination === 'string') {
      if (!/^arn:[^:]+:sqs:/.test(destination)) ctx.log(`Event source ${mapping.logicalId}: OnFailure destination ${destination} is not an SQS queue; not emulated (failed batches are only logged).`);
      else this.onFailure = destination;
    }
  }

  async init(): Promise<void> {
    await this.describe(true);
  }

  /** Learns the stream's shards; new shards start at TRIM_HORIZON, those known at startup at the checkpoint or StartingPosition. */
  private async describe(initial: boolean): Promise<void> {
    const found: Shard[] = [];
    let start: string | undefined;
    do {
      const { StreamDescription } = await this.client.send(new DescribeStreamCommand({ StreamArn: this.mapping.sourceArn, ExclusiveStartShardId: start }), {
        abortSignal: this.abort.signal,
      });
      found.push(...(StreamDescription?.Shards ?? []));
      start = StreamDescription?.LastEvaluatedShardId;
    } while (start);
    const checkpoints = this.ctx.checkpoints?.get(this.mapping.logicalId, this.mapping.sourceArn) ?? {};
    for (const s of found) {
      if (this.shards.has(s.ShardId!)) continue;
      const checkpoint = checkpoints[s.ShardId!];
      const closed = s.SequenceNumberRange?.EndingSequenceNumber !== undefined;
      let type: 'TRIM_HORIZON' | 'LATEST' | 'AFTER_SEQUENCE_NUMBER' = initial ? this.startingPosition : 'TRIM_HORIZON';
      // LATEST at startup: closed shards hold only the past.
      if (!checkpoint && initial && type === 'LATEST' && closed) {
        this.shards.set(s.ShardId!, { id: s.ShardId!, parentId: s.ParentShardId, done: true });
        continue;
      }
      if (checkpoint) type = 'AFTER_SEQUENCE_NUMBER';
      const { ShardIterator } = await this.client.send(
        new GetShardIteratorCommand({ StreamArn: this.mapping.sourceArn, ShardId: s.ShardId!, ShardIteratorType: type, SequenceNumber: checkpoint }),
        { abortSignal: this.abort.signal },
      );
      this.shards.set(s.ShardId!, { id: s.ShardId!, parentId: s.ParentShardId, iterator: ShardIterator, done: false });
    }
    this.lastDescribe = Date.now();
  }

  start(): void {
    if (this.mapping.enabled) this.loopPromise = this.loop();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        const outcome = await this.exclusive(() => this.pollShards());
        // Lambda polls each shard about four times a second when it is idle.
        if (outcome.records === 0) await sleep(250, this.abort.signal);
      } catch (error) {
        if (this.stopped || isAbort(error)) return;
        this.ctx.log(`Event source ${this.mapping.logicalId}: ${(error as Error).message}`);
        await sleep(1000, this.abort.signal);
      }
    }
  }

  /** One reader at a time (the background loop and pollOnce share the shard iterators). */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.busy.then(fn, fn);
    this.busy = run.catch(() => {});
    return run;
  }

  async pollOnce(): Promise<BatchOutcome> {
    return this.exclusive(() => this.pollShards());
  }

  /** Reads every readable shard once (children after their parents) and processes what came. */
  private async pollShards(): Promise<BatchOutcome> {
    if (Date.now() - this.lastDescribe > 2000) await this.describe(false);
    const total: BatchOutcome = { mapping: this.mapping.logicalId, records: 0, filtered: 0, invoked: false, succeeded: 0, failed: 0 };
    for (const shard of this.shards.values()) {
      if (shard.done || this.stopped) continue;
      if (shard.parentId && this.shards.get(shard.parentId) && !this.shards.get(shard.parentId)!.done) continue;
      const records = await this.read(shard);
      if (records.length === 0) continue;
      const o = await this.processBatch(shard, records);
      total.records += o.records;
      total.filtered += o.filtered;
      total.invoked ||= o.invoked;
      total.succeeded += o.succeeded;
      total.failed += o.failed;
      total.error ??= o.error;
    }
    return total;
  }

  /** Up to BatchSize records of a shard, gathering for MaximumBatchingWindowInSeconds. */
  private async read(shard: ShardState): Promise<StreamRecord[]> {
    const records: StreamRecord[] = [];
    const windowEnd = Date.now() + this.mapping.batchingWindowMs / this.timeScale;
    while (shard.iterator && records.length < this.mapping.batchSize && !this.stopped) {
      let out;
      try {
        out = await this.client.send(new GetRecordsCommand({ ShardIterator: shard.iterator, Limit: Math.min(1000, this.mapping.batchSize - records.length) }), {
          abortSignal: this.abort.signal,
        });
      } catch (error) {
        if (error instanceof ExpiredIteratorException || error instanceof TrimmedDataAccessException) {
          this.ctx.log(`Event source ${this.mapping.logicalId}: shard ${shard.id}: ${(error as Error).name}; restarting it at TRIM_HORIZON.`);
          const { ShardIterator } = await this.client.send(
            new GetShardIteratorCommand({ StreamArn: this.mapping.sourceArn, ShardId: shard.id, ShardIteratorType: 'TRIM_HORIZON' }),
          );
          shard.iterator = ShardIterator;
          continue;
        }
        throw error;
      }
      records.push(...(out.Records ?? []));
      shard.iterator = out.NextShardIterator ?? null;
      if (!shard.iterator) shard.done = true;
      if (records.length >= this.mapping.batchSize || Date.now() >= windowEnd || (out.Records ?? []).length === 0) break;
    }
    return records;
  }

  /** Invokes with the batch until it succeeds, or retries run out (then OnFailure); checkpoints. */
  private async processBatch(shard: ShardState, batch: StreamRecord[]): Promise<BatchOutcome> {
    const events = batch.map((r) => streamRecord(r, this.mapping.sourceArn, this.ctx.stack.region));
    const kept = events.filter((e) => passesFilters(this.mapping.filters, e));
    const outcome: BatchOutcome = { mapping: this.mapping.logicalId, records: events.length, filtered: events.length - kept.length, invoked: false, succeeded: 0, failed: 0 };
    if (kept.length > 0) {
      const result = await this.deliver(shard, kept, 0);
      outcome.invoked = true;
      outcome.succeeded = result.succeeded;
      outcome.failed = result.failed;
      outcome.error = result.error;
    }
    const last = batch[batch.length - 1]?.dynamodb?.SequenceNumber;
    if (last && this.ctx.checkpoints) {
      this.ctx.checkpoints.set(this.mapping.logicalId, this.mapping.sourceArn, shard.id, last);
      this.ctx.checkpoints.save();
    }
    return this.counters.add(outcome);
  }

  private async deliver(shard: ShardState, records: StreamEventRecord[], attemptsSoFar: number): Promise<{ succeeded: number; failed: number; error?: string }> {
    let pending = records;
    let attempts = attemptsSoFar;
    let succeeded = 0;
    let lastError: string | undefined;
    while (pending.length > 0 && !this.stopped) {
      const result = await this.ctx.runtime.invoke(this.mapping.functionLogicalId, { Records: pending });
      const sequence = pending.map((r) => r.dynamodb.SequenceNumber);
      const { all, failed, error } = batchItemFailures(result, sequence, this.mapping.reportBatchItemFailures);
      if (!all && failed.size === 0) return { succeeded: succeeded + pending.length, failed: 0, error: lastError };
      lastError = error ?? `${failed.size} record(s) reported as failed`;
      if (!all) {
        // Checkpoint just before the lowest failed sequence number; retry from there.
        const first = pending.findIndex((r) => failed.has(r.dynamodb.SequenceNumber));
        succeeded += first;
        pending = pending.slice(first);
      }
      attempts++;
      const oldest = pending[0]!.dynamodb.ApproximateCreationDateTime * 1000;
      const exhausted = (this.maxRetries >= 0 && attempts > this.maxRetries) || Date.now() - oldest > this.maxRecordAgeMs;
      if (this.bisect && all && pending.length > 1 && !exhausted) {
        const half = Math.ceil(pending.length / 2);
        const left = await this.deliver(shard, pending.slice(0, half), attempts);
        const right = await this.deliver(shard, pending.slice(half), attempts);
        return { succeeded: succeeded + left.succeeded + right.succeeded, failed: left.failed + right.failed, error: left.error ?? right.error };
      }
      if (exhausted) {
        await this.sendToOnFailure(shard, pending, attempts, lastError);
        return { succeeded, failed: pending.length, error: lastError };
      }
      this.ctx.log(`Event source ${this.mapping.logicalId} → ${this.mapping.functionLogicalId}: batch of ${pending.length} failed (${lastError}); retry ${attempts}.`);
      await sleep(Math.min(200 * 2 ** (attempts - 1), 5000) / this.timeScale, this.abort.signal);
    }
    return { succeeded, failed: pending.length, error: lastError };
  }

  private async sendToOnFailure(shard: ShardState, records: StreamEventRecord[], attempts: number, error: string | undefined): Promise<void> {
    this.retriesExhausted++;
    const first = records[0]!;
    const last = records[records.length - 1]!;
    const fn = this.ctx.runtime.get(this.mapping.functionLogicalId).definition;
    const record = {
      requestContext: { requestId: randomUUID(), functionArn: fn.arn, condition: 'RetryAttemptsExhausted', approximateInvokeCount: attempts },
      responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: error?.startsWith('invalid partial') ? undefined : 'Unhandled' },
      version: '1.0',
      timestamp: new Date().toISOString(),
      DDBStreamBatchInfo: {
        shardId: shard.id,
        startSequenceNumber: first.dynamodb.SequenceNumber,
        endSequenceNumber: last.dynamodb.SequenceNumber,
        approximateArrivalOfFirstRecord: new Date(first.dynamodb.ApproximateCreationDateTime * 1000).toISOString(),
        approximateArrivalOfLastRecord: new Date(last.dynamodb.ApproximateCreationDateTime * 1000).toISOString(),
        batchSize: records.length,
        streamArn: this.mapping.sourceArn,
      },
    };
    this.ctx.log(`Event source ${this.mapping.logicalId}: retries exhausted for ${records.length} record(s) of shard ${shard.id}${this.onFailure ? `; sent to ${this.onFailure}` : '; skipped'}.`);
    if (!this.onFailure) return;
    const endpoint = this.ctx.endpoints.AWS_ENDPOINT_URL_SQS;
    if (!endpoint) return;
    this.onFailureClient ??= new SQSClient({ endpoint, region: this.ctx.stack.region, credentials: pollerCredentials(this.ctx, this.mapping) });
    const [, , , , account, name] = this.onFailure.split(':');
    const { QueueUrl } = await this.onFailureClient.send(new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account }));
    await this.onFailureClient.send(new SendMessageCommand({ QueueUrl, MessageBody: JSON.stringify(record) }));
  }

  stats(): Json {
    return {
      logicalId: this.mapping.logicalId,
      source: this.mapping.sourceArn,
      function: this.mapping.functionLogicalId,
      enabled: this.mapping.enabled,
      shards: [...this.shards.values()].map((s) => ({ id: s.id, done: s.done })),
      retriesExhausted: this.retriesExhausted,
      ...this.counters,
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    await Promise.race([Promise.allSettled([this.loopPromise]), sleep(2000)]);
    this.ctx.checkpoints?.save();
    this.client.destroy();
    this.onFailureClient?.destroy();
  }
}

export interface StreamEventRecord {
  eventID: string;
  eventName: string;
  eventVersion: string;
  eventSource: 'aws:dynamodb';
  awsRegion: string;
  dynamodb: Json & { SequenceNumber: string; ApproximateCreationDateTime: number };
  eventSourceARN: string;
  userIdentity?: Json;
}

/**
 * One record of the DynamoDB stream event Lambda sends (wire format: epoch seconds, base64 binaries).
 * awsRegion is the stack's (DynamoDB Local says "ddblocal").
 */
export function streamRecord(r: StreamRecord, eventSourceARN: string, awsRegion: string): StreamEventRecord {
  const d = r.dynamodb ?? {};
  const image = (i?: Record<string, StreamAttributeValue>) => (i ? Object.fromEntries(Object.entries(i).map(([k, v]) => [k, wireValue(v)])) : undefined);
  const created = d.ApproximateCreationDateTime instanceof Date ? d.ApproximateCreationDateTime.getTime() / 1000 : Number(d.ApproximateCreationDateTime ?? Date.now() / 1000);
  return {
    eventID: r.eventID!,
    eventName: r.eventName!,
    eventVersion: r.eventVersion ?? '1.1',
    eventSource: 'aws:dynamodb',
    awsRegion,
    dynamodb: JSON.parse(
      JSON.stringify({
        ApproximateCreationDateTime: Math.floor(created),
        Keys: image(d.Keys),
        NewImage: image(d.NewImage),
        OldImage: image(d.OldImage),
        SequenceNumber: d.SequenceNumber,
        SizeBytes: d.SizeBytes,
        StreamViewType: d.StreamViewType,
      }),
    ),
    eventSourceARN,
    ...(r.userIdentity ? { userIdentity: { type: r.userIdentity.Type, principalId: r.userIdentity.PrincipalId } } : {}),
  };
}

/** An AttributeValue as JSON carries it: binaries in base64. */
function wireValue(v: StreamAttributeValue): unknown {
  if (v.B !== undefined) return { B: Buffer.from(v.B).toString('base64') };
  if (v.BS !== undefined) return { BS: v.BS.map((b) => Buffer.from(b).toString('base64')) };
  if (v.L !== undefined) return { L: v.L.map(wireValue) };
  if (v.M !== undefined) return { M: Object.fromEntries(Object.entries(v.M).map(([k, x]) => [k, wireValue(x)])) };
  const [[key, value]] = Object.entries(v).filter(([k, x]) => k !== '$unknown' && x !== undefined) as [[string, unknown]];
  return { [key]: value };
}

// ---- the trigger module ----------------------------------------------------------------------------

export interface EventSourcesOptions extends SourceContext {
  /** Poll in the background (false: only trigger()). */
  autoStart: boolean;
}

export interface RunningEventSources {
  sources: EventSource[];
  trigger(id: string): Promise<BatchOutcome>;
  owns(id: string): boolean;
  stats(): Json[];
  stop(): Promise<void>;
}

/** Starts a poller per mapping of the template. Fails (like a deploy would) if a source is unusable. */
export async function startEventSources(options: EventSourcesOptions): Promise<RunningEventSources | undefined> {
  const found = eventSourceMappings(options.stack, options.log);
  if (found.length === 0) return undefined;
  const sources = found.map(({ mapping, kind }) => kind.create(mapping, options));
  try {
    await Promise.all(
      sources.map((s) =>
        s.init().catch((error: Error) => {
          if (error instanceof TemplateError) throw error;
          throw new Error(`Event source mapping ${s.mapping.logicalId} (${s.mapping.sourceArn}): ${error.name}: ${error.message}`);
        }),
      ),
    );
  } catch (error) {
    await Promise.all(sources.map((s) => s.stop()));
    throw error;
  }
  if (options.autoStart) for (const s of sources) s.start();
  const find = (id: string) => sources.find((s) => s.mapping.logicalId === id);
  return {
    sources,
    owns: (id) => find(id) !== undefined,
    trigger: async (id) => {
      const source = find(id);
      if (!source) throw new Error(`No event source mapping '${id}' (mappings: ${sources.map((s) => s.mapping.logicalId).join(', ')}).`);
      return source.pollOnce();
    },
    stats: () => sources.map((s) => s.stats()),
    stop: async () => {
      await Promise.all(sources.map((s) => s.stop()));
    },
  };
}
