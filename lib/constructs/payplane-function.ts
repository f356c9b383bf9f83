import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction, OutputFormat, SourceMapMode, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Queue, type IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct, type IConstruct } from 'constructs';
import { STAGE_SETTINGS, type Stage } from '../stage-config';
import { acknowledge } from './acknowledge';
import type { PayplaneTable } from './payplane-table';

/**
 * DynamoDB item actions a function may send to a table itself (there is no `dynamodb:TransactWriteItems`
 * action: a transaction needs the per-item action of each item it carries). `Query` here is a Query of the
 * table's own key; a Query of an index is granted with `TableAccess.indexes`. No `Scan`: every access
 * path in the data model is a key lookup or a Query.
 */
export type TableAction = 'GetItem' | 'BatchGetItem' | 'Query' | 'PutItem' | 'UpdateItem' | 'DeleteItem' | 'ConditionCheckItem' | 'BatchWriteItem';

const READ_ACTIONS: ReadonlySet<TableAction> = new Set(['GetItem', 'BatchGetItem', 'Query']);

/**
 * How a function may use a KMS key directly (envelope encryption with the AWS Encryption SDK, which calls
 * `kms:GenerateDataKey` to encrypt and `kms:Decrypt` to decrypt; the caching materials manager only
 * reduces how often).
 */
export type KeyUsage = 'encrypt' | 'decrypt' | 'both';

/**
 * KMS actions DynamoDB performs with the caller's credentials on a table encrypted with a customer-managed
 * key (same sets as aws-cdk-lib's table grants, with the `*` actions spelled out): reading needs only
 * Decrypt and DescribeKey. They are only granted through DynamoDB (`kms:ViaService`), so table access never
 * lets code call KMS itself.
 */
const READ_KEY_ACTIONS = ['kms:Decrypt', 'kms:DescribeKey'];
const WRITE_KEY_ACTIONS = [
  ...READ_KEY_ACTIONS,
  'kms:Encrypt',
  'kms:ReEncryptFrom',
  'kms:ReEncryptTo',
  'kms:GenerateDataKey',
  'kms:GenerateDataKeyWithoutPlaintext',
];

const KEY_ACTIONS: Record<KeyUsage, string[]> = {
  encrypt: ['kms:GenerateDataKey'],
  decrypt: ['kms:Decrypt'],
  both: ['kms:GenerateDataKey', 'kms:Decrypt'],
};

/** How a function may use an HMAC KMS key (GENERATE_VERIFY_MAC): `generate` signs, `verify` only checks. */
export type MacUsage = 'generate' | 'verify';

const MAC_ACTIONS: Record<MacUsage, string[]> = {
  generate: ['kms:GenerateMac'],
  verify: ['kms:VerifyMac'],
};

/**
 * The environment variable each bound resource is handed to functions under: a binding sets it together with
 * the grant (as Powertools' `bindTable` does), so the stack keeps no map of variables by hand.
 */
const VARIABLES = new WeakMap<IConstruct, string>();

/**
 * Names the environment variable under which functions get `resource` when they bind it: a key's ARN
 * (`bindKey`, `bindMacKey`, `bindSignKey`) or a queue's URL (`bindQueue`). Tables name theirs with
 * `PayplaneTable`'s `variable` prop. Returns the resource, so it reads at the definition:
 * `withVariable(new Key(this, 'Key', …), 'KMS_KEY_ARN')`.
 */
export function withVariable<T extends IConstruct>(resource: T, variable: string): T {
  if (!/^[A-Z][A-Z0-9_]*$/.test(variable)) {
    throw new Error(`${resource.node.path}: environment variable '${variable}' must be upper case letters, digits and underscores (e.g. KMS_KEY_ARN).`);
  }
  VARIABLES.set(resource, variable);
  return resource;
}

/** The variable `withVariable` (or a PayplaneTable's `variable`) named for a resource, if any. */
export function variableOf(resource: IConstruct): string | undefined {
  return VARIABLES.get(resource);
}

/** Options of `consumeQueue` (the SQS event source). */
export interface ConsumeQueueOptions {
  /**
   * Messages per invocation.
   * @default 10
   */
  readonly batchSize?: number;
  /**
   * Concurrent pollers (invocations) for this source, 2–1000.
   * @default 2
   */
  readonly maxConcurrency?: number;
}

/** What `bindTable` grants: exactly the calls the function's code sends to the table. */
export interface TableAccess {
  /**
   * Item actions on the table's ARN (never on its indexes: an item action cannot name one).
   * @default - none (only `indexes`)
   */
  readonly actions?: TableAction[];
  /**
   * Indexes the function queries: `dynamodb:Query` on each index's ARN, and nothing else there.
   * @default - none
   */
  readonly indexes?: string[];
  /**
   * Partition key patterns (IAM wildcards) the function may never read or write, e.g. `['APIKEY#*']`
   * (a `dynamodb:LeadingKeys` condition on every statement of the binding).
   * @default - every partition
   */
  readonly excludePartitions?: string[];
  /**
   * Partition key patterns (IAM wildcards) the function may only read or write, e.g. `['PLATFORMKEY']`
   * (a `dynamodb:LeadingKeys` condition on every statement of the binding). Not with `excludePartitions`.
   * @default - every partition
   */
  readonly onlyPartitions?: string[];
}

/**
 * esbuild settings of every function. Exported so that the bundle budget test (test/unit/bundle-budget.test.ts)
 * builds exactly what synth builds.
 */
export const BUNDLING: BundlingOptions = {
  // CommonJS: the most compatible output with dependencies that still `require()` Node built-ins.
  // Consequence for handler code: no top-level `await` (initialise lazily in the handler instead).
  format: OutputFormat.CJS,
  target: 'node22',
  minify: true,
  // Error names are a contract (Step Functions' Retry and Catch match errorType, the state machine's
  // PayoutTransientError; logs name them): minifying must not rename the classes `new.target.name` reads.
  keepNames: true,
  sourceMap: true,
  sourceMapMode: SourceMapMode.DEFAULT,
  sourcesContent: false,
  // The runtime's AWS SDK v3 (this is also NodejsFunction's default for Node >= 18; stated on purpose).
  // The local cloud resolves them from the project's node_modules, as Lambda does from its runtime.
  externalModules: ['@aws-sdk/*'],
  // ES module builds first: esbuild tree-shakes those, not CommonJS. Today that changes only the Encryption
  // SDK (@aws-crypto/*, ~60 KB less in every function that seals or opens) and uuid, both built for Node.
  mainFields: ['module', 'main'],
};

/** Repository root: `lib/constructs/` → `../..`. */
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface PayplaneFunctionProps {
  /** The stage; decides log retention, log removal policy and the default log level. */
  readonly stage: Stage;
  /** Path of the handler file (absolute, or relative to the repository root). It must `export const handler`. */
  readonly entry: string;
  /**
   * Environment variables added to the ones every function gets (`STAGE`, `POWERTOOLS_SERVICE_NAME`,
   * `POWERTOOLS_LOG_LEVEL`, `NODE_OPTIONS`), which they cannot override. Bound resources need none here: a
   * binding (`bindTable`, `bindKey`, `bindQueue`…) sets the resource's variable itself (`withVariable`,
   * `PayplaneTable`'s `variable`). This is for settings (`FEE_SCHEDULE`) and resources bound without one.
   * @default - only the common variables
   */
  readonly environment?: Record<string, string>;
  /**
   * Description of the Lambda function.
   * @default - no description
   */
  readonly description?: string;
  /**
   * Memory in MB (CPU scales with it).
   * @default 512
   */
  readonly memorySize?: number;
  /**
   * Timeout. API functions keep the default; API Gateway gives up after 29 s anyway.
   * @default - the stage's `apiTimeout` (10 s; 5 s in the test stage)
   */
  readonly timeout?: Duration;
  /**
   * POWERTOOLS_LOG_LEVEL. `DEBUG` is refused in prod.
   * @default - the stage's level (`INFO`)
   */
  readonly logLevel?: 'INFO' | 'DEBUG' | 'WARN' | 'ERROR';
  /**
   * Retention of the function's log group.
   * @default - the stage's retention: one week in dev, one year in prod
   */
  readonly logRetention?: RetentionDays;
  /**
   * Retries of asynchronous invocations (EventBridge, for example), 0–2.
   * @default 2 (Lambda's own default)
   */
  readonly retryAttempts?: number;
}

/**
 * The one way to define a Lambda function in Payplane. It fixes, once for every function:
 * Node.js 22 on arm64, esbuild bundling to minified CommonJS with source maps (`@aws-sdk/*` left to the
 * runtime), X-Ray active tracing, an explicit log group with the stage's retention, the common environment,
 * and a role of its own that starts with no permissions but writing its logs and traces.
 *
 * Everything else is granted explicitly with `bindTable`, `bindKey`, `bindMacKey`, `bindSignKey`, `bindQueue` and
 * `consumeQueue`, so least privilege is the default; each binding also hands the function the resource's
 * environment variable (its name, ARN or URL), so what a function may use and what it is told are one list.
 *
 * Construct ids are a contract: renaming one replaces the function, its role and its log group.
 */
export class PayplaneFunction extends Construct implements iam.IGrantable {
  /** The Lambda function. */
  readonly fn: NodejsFunction;
  /** The execution role (no managed policies). */
  readonly role: iam.Role;
  /** The function's log group. */
  readonly logGroup: LogGroup;
  /** Absolute path of the handler file. */
  readonly entry: string;
  readonly grantPrincipal: iam.IPrincipal;

  constructor(scope: Construct, id: string, props: PayplaneFunctionProps) {
    super(scope, id);
    const settings = STAGE_SETTINGS[props.stage];
    const logLevel = props.logLevel ?? settings.logLevel;
    if (props.stage === 'prod' && logLevel === 'DEBUG') {
      throw new Error(
        `${this.node.path}: logLevel 'DEBUG' is not allowed in prod (debug logs may carry request bodies and PII). ` +
          `Use 'INFO' or remove the logLevel prop.`,
      );
    }

    this.logGroup = new LogGroup(this, 'LogGroup', {
      retention: props.logRetention ?? settings.logRetention,
      removalPolicy: settings.removalPolicy,
    });

    this.role = new iam.Role(this, 'ServiceRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      // The path as logical ids see it: a construct with the id 'Default' is hidden from both (see SandboxChannel).
      description: `Execution role of ${this.node.path.replace(/\/Default(?=\/)/g, '')}`,
    });
    this.grantPrincipal = this.role;
    // Replaces AWSLambdaBasicExecutionRole: write to this function's own log group only.
    this.logGroup.grantWrite(this.role);

    this.entry = isAbsolute(props.entry) ? props.entry : join(REPO_ROOT, props.entry);
    this.fn = new NodejsFunction(this, 'Function', {
      entry: this.entry,
      handler: 'handler',
      projectRoot: REPO_ROOT,
      depsLockFilePath: join(REPO_ROOT, 'package-lock.json'),
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? settings.apiTimeout,
      description: props.description,
      role: this.role,
      logGroup: this.logGroup,
      tracing: Tracing.ACTIVE,
      retryAttempts: props.retryAttempts,
      environment: {
        ...props.environment,
        STAGE: props.stage,
        POWERTOOLS_SERVICE_NAME: 'payplane',
        POWERTOOLS_LOG_LEVEL: logLevel,
        NODE_OPTIONS: '--enable-source-maps',
      },
      bundling: BUNDLING,
    });

    acknowledge(
      this,
      'AwsSolutions-IAM5[Resource::*]',
      'Only for xray:PutTraceSegments and xray:PutTelemetryRecords (added by active tracing): X-Ray does not ' +
        'support resource-level permissions, so the resource must be "*".',
    );
    acknowledge(
      this,
      'AwsSolutions-L1',
      'The runtime is pinned to nodejs22.x on purpose: the project contract requires code that runs on ' +
        'Node 20 (local tooling) and Node 22 (Lambda). Moving to nodejs24.x is a deliberate, separate change.',
    );
  }

  /**
   * Grants `access.actions` on the table, `dynamodb:Query` on each of `access.indexes`, and the KMS actions
   * DynamoDB needs on the table's key for them (Decrypt and DescribeKey to read; also the data-key actions to
   * write), restricted to calls made through DynamoDB.
   */
  bindTable(table: PayplaneTable, access: TableAccess): this {
    this.setVariable(table, table.tableName);
    const actions = [...new Set(access.actions ?? [])];
    const indexes = [...new Set(access.indexes ?? [])];
    const unknown = indexes.filter((name) => !table.indexNames.includes(name));
    if (unknown.length || (!actions.length && !indexes.length)) {
      throw new Error(
        `${this.node.path}: bindTable(${table.node.path}) ` +
          (unknown.length
            ? `names index ${unknown.map((n) => `'${n}'`).join(', ')}, which the table does not have (it has ${table.indexNames.map((n) => `'${n}'`).join(', ') || 'none'}). Use one of those, or add the index to the table.`
            : 'grants nothing. List the actions the function sends in `actions`, or the indexes it queries in `indexes`.'),
      );
    }
    if (access.excludePartitions?.length && access.onlyPartitions?.length) {
      throw new Error(`${this.node.path}: bindTable(${table.node.path}) takes excludePartitions or onlyPartitions, not both.`);
    }
    const conditions = access.excludePartitions?.length
      ? { 'ForAllValues:StringNotLike': { 'dynamodb:LeadingKeys': access.excludePartitions } }
      : access.onlyPartitions?.length
        ? { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': access.onlyPartitions } }
        : undefined;
    if (actions.length) {
      this.role.addToPrincipalPolicy(
        new iam.PolicyStatement({ actions: actions.map((a) => `dynamodb:${a}`), resources: [table.tableArn], conditions }),
      );
    }
    if (indexes.length) {
      this.role.addToPrincipalPolicy(
        new iam.PolicyStatement({ actions: ['dynamodb:Query'], resources: indexes.map((name) => `${table.tableArn}/index/${name}`), conditions }),
      );
    }
    const reads = actions.every((a) => READ_ACTIONS.has(a));
    const stack = Stack.of(this);
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: reads ? READ_KEY_ACTIONS : WRITE_KEY_ACTIONS,
        resources: [table.tableKey.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `dynamodb.${stack.region}.${stack.urlSuffix}` } },
      }),
    );
    return this;
  }

  /**
   * Grants direct use of a KMS key for envelope encryption: `encrypt` → kms:GenerateDataKey,
   * `decrypt` → kms:Decrypt, `both` → both. With `purposes`, only for values sealed with one of those
   * purposes (functions/commons/crypto.ts puts `purpose` in the encryption context, which KMS checks).
   */
  bindKey(key: IKey, usage: KeyUsage, purposes?: string[]): this {
    this.setVariable(key, key.keyArn);
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: KEY_ACTIONS[usage],
        resources: [key.keyArn],
        conditions: purposes ? { StringEquals: { 'kms:EncryptionContext:purpose': purposes } } : undefined,
      }),
    );
    return this;
  }

  /**
   * Grants one side of an HMAC key: `generate` → kms:GenerateMac, `verify` → kms:VerifyMac. Splitting them
   * keeps a verifier from ever minting a valid MAC.
   */
  bindMacKey(key: IKey, usage: MacUsage): this {
    this.setVariable(key, key.keyArn);
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: MAC_ACTIONS[usage], resources: [key.keyArn] }));
    return this;
  }

  /**
   * Grants signing with an asymmetric SIGN_VERIFY key (kms:Sign only). Verifiers use the public key
   * (GetPublicKey, published once), so nobody else needs anything on the key.
   */
  bindSignKey(key: IKey): this {
    this.setVariable(key, key.keyArn);
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['kms:Sign'], resources: [key.keyArn] }));
    return this;
  }

  /**
   * Grants reading an asymmetric key's public half (kms:GetPublicKey only), e.g. to publish it in a JWKS.
   */
  bindPublicKey(key: IKey): this {
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['kms:GetPublicKey'], resources: [key.keyArn] }));
    return this;
  }

  /**
   * Grants sending to a queue (sqs:SendMessage only) and sets the queue's variable to its URL. A queue
   * encrypted with a KMS key also needs the key for SQS's data keys: kms:GenerateDataKey and kms:Decrypt on
   * it, only through SQS (`kms:ViaService`), so the function can never use the key itself.
   */
  bindQueue(queue: IQueue, access: 'send'): this {
    this.setVariable(queue, queue.queueUrl);
    const actions = { send: ['sqs:SendMessage'] }[access];
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions, resources: [queue.queueArn] }));
    this.grantQueueKey(queue, ['kms:GenerateDataKey', 'kms:Decrypt']);
    return this;
  }

  /**
   * Makes the queue this function's event source, with partial batch responses (ReportBatchItemFailures):
   * the handler returns `{ batchItemFailures }` and only those messages come back. Grants what Lambda's
   * poller needs on the queue (receive, delete, change visibility, attributes), and for a queue encrypted
   * with a KMS key kms:Decrypt on it through SQS only (`kms:ViaService`). The queue's visibility timeout
   * should be at least 6× the function's timeout (AWS's advice). Sets no variable: the poller, not the
   * code, reads the queue.
   */
  consumeQueue(queue: IQueue, options: ConsumeQueueOptions = {}): this {
    // The event source would grant kms:Decrypt on the queue's key for any use (IQueue.grantConsumeMessages);
    // it sees the queue without its key, and the grant below limits the key to SQS.
    const source = queue.encryptionMasterKey
      ? Queue.fromQueueAttributes(this, `Consumes${queue.node.addr}`, {
          queueArn: queue.queueArn,
          queueUrl: queue.queueUrl,
          queueName: queue.queueName,
        })
      : queue;
    this.fn.addEventSource(
      new SqsEventSource(source, {
        batchSize: options.batchSize ?? 10,
        maxConcurrency: options.maxConcurrency ?? 2,
        reportBatchItemFailures: true,
      }),
    );
    this.grantQueueKey(queue, ['kms:Decrypt']);
    return this;
  }

  /** The KMS actions SQS performs with the caller's credentials on a queue's key, granted through SQS only. */
  private grantQueueKey(queue: IQueue, actions: string[]): void {
    const key = queue.encryptionMasterKey;
    if (!key) return;
    const stack = Stack.of(this);
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions,
        resources: [key.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `sqs.${stack.region}.${stack.urlSuffix}` } },
      }),
    );
  }

  /** Hands the function a bound resource's variable (when it names one). */
  private setVariable(resource: IConstruct, value: string): void {
    const variable = variableOf(resource);
    if (variable) this.fn.addEnvironment(variable, value);
  }
}
