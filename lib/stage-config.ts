import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { parseFeeSchedule, type FeeScheduleOverride } from '../functions/ledger/fees';

/**
 * The stages. A stage is one stack (`Payplane-<stage>`) with its own tables, key and API. `test` is the one
 * the e2e tier runs in the local cloud: dev with short API function timeouts (see `apiTimeout`).
 */
export const STAGES = ['dev', 'prod', 'test'] as const;
export type Stage = (typeof STAGES)[number];

/** Parses a stage name from context or options; the error names the value and the fix. */
export function parseStage(value: unknown): Stage {
  if (typeof value === 'string' && (STAGES as readonly string[]).includes(value)) return value as Stage;
  throw new Error(
    `Unknown stage ${JSON.stringify(value)}: expected one of ${STAGES.join(', ')}. ` +
      `Pass it as CDK context, e.g. \`npx cdk synth -c stage=dev\`.`,
  );
}

/**
 * Everything that differs between stages, in one place. A reviewer reads this table to know what prod
 * does that dev does not.
 */
export interface StageSettings {
  /** Removal policy of stateful resources (tables, key, log groups). */
  readonly removalPolicy: RemovalPolicy;
  /** DynamoDB deletion protection on both tables. */
  readonly deletionProtection: boolean;
  /**
   * Retention of Lambda and API access logs. prod keeps one year (PCI DSS 10.5.1 asks for 12 months of
   * audit log history); dev keeps one week, which is enough to debug and cheap.
   */
  readonly logRetention: RetentionDays;
  /** Waiting period before a destroyed KMS key is deleted (7 days is the minimum KMS allows). */
  readonly keyPendingWindow: Duration;
  /** API Gateway throttling (token buckets: `burstLimit` requests at once, refilled at `rateLimit` per second). */
  readonly throttling: {
    /**
     * Each merchant, all its keys together: the default usage plan (`payplane-<stage>-merchants`). An operator
     * raises one merchant's limits with `payplane merchants limits set` (its own usage plan).
     */
    readonly merchant: Throttle;
    /**
     * The stage's default per method (MethodSettings `/*` `*`): the ceiling of each merchant route, all
     * merchants together. API Gateway applies it to every method separately, never to the stage as a whole.
     */
    readonly method: Throttle;
    /**
     * Each public (anonymous) method, all callers together, by its first path segment (`checkout`,
     * `channels`, `v1` for `/v1/platform/public_keys`, which verifiers fetch and cache): a flood of one of them
     * spends its own bucket, never the merchants'.
     */
    readonly publicRoutes: Readonly<Record<string, Throttle>>;
  };
  /**
   * The WAF web ACL's per-IP rate-based rules on the public routes: requests per IP per 5-minute window
   * (WAF's minimum limit is 10; it counts over the window, so it stops a flood within a minute or so, not
   * at once).
   */
  readonly waf: { readonly checkoutPerIp: number; readonly channelsPerIp: number };
  /** POWERTOOLS_LOG_LEVEL. DEBUG is never allowed in prod (it may log request bodies). */
  readonly logLevel: 'INFO' | 'DEBUG' | 'WARN' | 'ERROR';
  /** CloudFormation termination protection of the stack. */
  readonly terminationProtection: boolean;
  /**
   * Timeout of the API route functions. It is also how long a request holds its Idempotency-Key before a
   * retry may take over a run that died (functions/http/idempotency.ts: the lock is the function's remaining
   * time), so the test stage keeps it short: its crash-and-retry tests wait out one lock each.
   */
  readonly apiTimeout: Duration;
  /**
   * The platform fee schedule's changes to DEFAULT_FEE_SCHEDULE (functions/ledger/fees.ts), given to the
   * functions that charge fees as FEE_SCHEDULE. The context value `feeSchedule` wins over this.
   * @default - DEFAULT_FEE_SCHEDULE as is (no FEE_SCHEDULE variable)
   */
  readonly feeSchedule?: FeeScheduleOverride;
  /**
   * The cross-border fee in basis points (0-10000), added to the payment method's percentage on payments converted
   * to the merchant's settlement currency; given to the confirming functions as CROSS_BORDER_FEE_BPS
   * (functions/fx/settings.ts, docs/settlement.md § FX).
   * @default - no variable: DEFAULT_CROSS_BORDER_FEE_BPS (100 = 1.00 %)
   */
  readonly crossBorderFeeBps?: number;
  /**
   * The stage's public base URL when it is served on a custom domain (API Gateway domain name + base path
   * mapping), e.g. `https://api.payplane.example/v1-prod`; no trailing slash. Functions build every public URL
   * (checkout_url, the channel's notify URL, 3-D Secure redirects) from it, never from a request's Host.
   * @default - the RestApi's invoke URL, `https://<restApiId>.execute-api.<region>.amazonaws.com/<stage>`
   */
  readonly publicBaseUrl?: string;
  /**
   * The domain payer receipts are sent from (`receipts@<domain>`): the stack creates its SES domain identity, whose
   * DKIM records the operator publishes before the first receipt (docs/operations.md, Receipts). Replace the
   * placeholder with a domain you own before deploying.
   */
  readonly receiptsSenderDomain: string;
  /**
   * When the daily settlement run starts (EventBridge Scheduler: an expression and the IANA time zone it is read
   * in). The run settles up to the start of the current business day (functions/settlements/calendar.ts), so a
   * time shortly after the business day's midnight pays yesterday out early.
   */
  readonly settlementSchedule: { readonly expression: string; readonly timeZone: string };
  /**
   * How far behind now a settle run's windows end (SETTLEMENT_LAG_SECONDS): an entry carries its operation's
   * `now`, which precedes its commit by at most the writing function's timeout, so a window must never end later
   * than now minus the longest such timeout (Lambda's 15 minutes, to be safe). Only the test stage, whose API
   * functions time out after 5 s and whose e2e tier settles payments it has just made, shortens it.
   */
  readonly settlementLag: Duration;
  /**
   * The signed audit chain heads (lib/constructs/audit-heads.ts, docs/audit.md § Signed heads): when the daily
   * document is signed (EventBridge Scheduler), and how long S3 Object Lock keeps each one. COMPLIANCE: nobody, the
   * account's root included, can shorten or remove it before `retention` ends; GOVERNANCE: a principal with
   * s3:BypassGovernanceRetention can (dev and test, whose buckets must be deletable).
   */
  readonly auditHeads: {
    readonly schedule: { readonly expression: string; readonly timeZone: string };
    readonly lockMode: 'COMPLIANCE' | 'GOVERNANCE';
    readonly retention: Duration;
  };
  /**
   * The AWS Backup plan of both tables (lib/constructs/backup.ts, docs/operations.md § Backups and restore (AWS)).
   * It adds what point-in-time recovery (35 days, always on) does not: older recovery points, in a locked vault
   * and in another region.
   */
  readonly backup: BackupSettings;
  /**
   * Tables restored from a backup and adopted by the stack in place of the ones it created (the runbook in
   * docs/operations.md § Adopting a restored table). Keyed by table: `main` (MainTable), `idempotency`
   * (IdempotencyTable). Once a table is adopted its entry stays for good: the stack then names that table.
   * @default - none: the stack's own tables
   */
  readonly restoredTables?: Partial<Record<TableKey, RestoredTable>>;
}

/** The stack's tables, as `restoredTables` names them. */
export type TableKey = 'main' | 'idempotency';

/**
 * A restored table the stack takes over. The adoption is a CloudFormation resource import, which may only add
 * resources, so it takes three deploys: `step: 'detach'` (cdk deploy), `step: 'import'` (cdk import), then no
 * `step` (cdk deploy).
 */
export interface RestoredTable {
  /** The restored table's name (what `restore-table-to-point-in-time --target-table-name` was given). */
  readonly tableName: string;
  /**
   * The adoption step in progress:
   * - `detach`: the stack's table resource leaves the template (kept: prod's tables are RETAIN; dev's and test's
   *   are deleted) and everything that used it names the restored table literally.
   * - `import`: the table resource comes back, naming the restored table, for `cdk import`; the rest is unchanged.
   * @default - adopted: the stack manages the restored table like the one it created
   */
  readonly step?: 'detach' | 'import';
  /**
   * The restored table's stream ARN (`aws dynamodb describe-table --query Table.LatestStreamArn`), needed by a
   * table with a stream (main) while `step` is set: the publisher's event source mapping reads it.
   * @default - none (a table without a stream)
   */
  readonly streamArn?: string;
}

export interface BackupSettings {
  /** Weekly recovery points kept (Sundays 03:00 UTC); each is deleted `weeklies` × 7 days after it was made. */
  readonly weeklies: number;
  /**
   * Monthly recovery points kept (the 1st, 04:00 UTC); each is deleted `monthlies` × 365/12 days (rounded) after it
   * was made, so 12 keeps a year. 0: no monthly rule.
   */
  readonly monthlies: number;
  /**
   * AWS Backup Vault Lock on the vaults, in compliance mode: the lock can be changed or removed only during
   * `changeableFor` after it is set (AWS's minimum is 3 days), then nobody (root included) can shorten a recovery
   * point's life or delete the vault while it holds one. Its minimum and maximum retention are the shortest and
   * longest rule retention (the plan's rules must stay within them; the synth refuses a plan that does not).
   * @default - no vault lock
   */
  readonly vaultLock?: { readonly changeableFor: Duration };
  /**
   * A copy of every recovery point to a vault in another region of the same account, kept as long as the original.
   * The destination vault (with its own key, and the same lock) is the stack `Payplane-<stage>-BackupCopy` in that
   * region, deployed before the stage's stack (`npx cdk deploy --all`). Needs AWS Backup's advanced features for
   * DynamoDB on in the stage's account and region (docs/operations.md).
   * @default - no copy
   */
  readonly copy?: { readonly region: string };
}

export interface Throttle {
  readonly rateLimit: number;
  readonly burstLimit: number;
}

const DEV: StageSettings = {
  removalPolicy: RemovalPolicy.DESTROY,
  deletionProtection: false,
  logRetention: RetentionDays.ONE_WEEK,
  keyPendingWindow: Duration.days(7),
  throttling: {
    merchant: { rateLimit: 100, burstLimit: 200 },
    method: { rateLimit: 500, burstLimit: 1000 },
    publicRoutes: { checkout: { rateLimit: 50, burstLimit: 100 }, channels: { rateLimit: 50, burstLimit: 100 }, v1: { rateLimit: 20, burstLimit: 40 }, docs: { rateLimit: 20, burstLimit: 40 } },
  },
  waf: { checkoutPerIp: 300, channelsPerIp: 3000 },
  logLevel: 'INFO',
  terminationProtection: false,
  apiTimeout: Duration.seconds(10),
  receiptsSenderDomain: 'dev.payplane.example',
  settlementSchedule: { expression: 'cron(30 0 * * ? *)', timeZone: 'UTC' },
  settlementLag: Duration.minutes(15),
  auditHeads: { schedule: { expression: 'cron(45 0 * * ? *)', timeZone: 'UTC' }, lockMode: 'GOVERNANCE', retention: Duration.days(1) },
  backup: { weeklies: 2, monthlies: 0 },
};

export const STAGE_SETTINGS: Record<Stage, StageSettings> = {
  dev: DEV,
  prod: {
    removalPolicy: RemovalPolicy.RETAIN,
    deletionProtection: true,
    logRetention: RetentionDays.ONE_YEAR,
    keyPendingWindow: Duration.days(30),
    throttling: {
      merchant: { rateLimit: 100, burstLimit: 200 },
      method: { rateLimit: 5000, burstLimit: 5000 },
      publicRoutes: { checkout: { rateLimit: 200, burstLimit: 400 }, channels: { rateLimit: 200, burstLimit: 400 }, v1: { rateLimit: 50, burstLimit: 100 }, docs: { rateLimit: 20, burstLimit: 40 } },
    },
    waf: { checkoutPerIp: 300, channelsPerIp: 3000 },
    logLevel: 'INFO',
    terminationProtection: true,
    apiTimeout: Duration.seconds(10),
    receiptsSenderDomain: 'payplane.example',
    settlementSchedule: { expression: 'cron(30 0 * * ? *)', timeZone: 'UTC' },
    settlementLag: Duration.minutes(15),
    // PCI DSS v4 10.5.1 keeps audit history 12 months: 13 months (400 days) leaves a month's margin for the
    // auditor's look-back at the oldest entry.
    auditHeads: { schedule: { expression: 'cron(45 0 * * ? *)', timeZone: 'UTC' }, lockMode: 'COMPLIANCE', retention: Duration.days(400) },
    // Lock: a week to see the first weekly job and its copy succeed under the lock, then immutable (docs/operations.md).
    backup: { weeklies: 8, monthlies: 12, vaultLock: { changeableFor: Duration.days(7) }, copy: { region: 'us-west-2' } },
  },
  // Long enough for a loaded CI machine (the slowest route answers in well under a second), short enough
  // that a dead run's claim is taken over in seconds.
  // The e2e tier settles what it has just paid: windows end 10 s behind now (twice the API functions' timeout).
  test: { ...DEV, apiTimeout: Duration.seconds(5), settlementLag: Duration.seconds(10) },
};

/**
 * Validates a platform fee schedule at synth: a bad one fails the synth naming where it came from, not
 * the first capture after the deploy. Takes the JSON text of `-c feeSchedule='…'` or an object
 * (cdk.json, stage settings); nothing or `{}` means no change to the default.
 */
export function parseFeeScheduleSetting(value: unknown, source: string): FeeScheduleOverride | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const example = `e.g. -c feeSchedule='{"card":{"percent_bps":250,"fixed":30}}'`;
  let input = value;
  if (typeof value === 'string') {
    try {
      input = JSON.parse(value);
    } catch {
      throw new Error(`${source} is not JSON: got ${JSON.stringify(value)}. Pass a JSON object in single quotes, ${example}.`);
    }
  }
  try {
    const parsed = parseFeeSchedule(input);
    return Object.keys(parsed).length ? parsed : undefined;
  } catch (error) {
    const shown = typeof value === 'string' ? value : JSON.stringify(value);
    throw new Error(`${source} ${shown} is not a valid fee schedule. ${(error as Error).message} Fix it, ${example}.`, { cause: error });
  }
}
