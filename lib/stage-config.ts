import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';

/** The deployable stages. A stage is one stack (`Payplane-<stage>`) with its own tables, key and API. */
export const STAGES = ['dev', 'prod'] as const;
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
  /** Stage-wide API Gateway throttling (every method, all callers together). */
  readonly throttling: { readonly rateLimit: number; readonly burstLimit: number };
  /** POWERTOOLS_LOG_LEVEL. DEBUG is never allowed in prod (it may log request bodies). */
  readonly logLevel: 'INFO' | 'DEBUG' | 'WARN' | 'ERROR';
  /** CloudFormation termination protection of the stack. */
  readonly terminationProtection: boolean;
}

export const STAGE_SETTINGS: Record<Stage, StageSettings> = {
  dev: {
    removalPolicy: RemovalPolicy.DESTROY,
    deletionProtection: false,
    logRetention: RetentionDays.ONE_WEEK,
    keyPendingWindow: Duration.days(7),
    throttling: { rateLimit: 50, burstLimit: 100 },
    logLevel: 'INFO',
    terminationProtection: false,
  },
  prod: {
    removalPolicy: RemovalPolicy.RETAIN,
    deletionProtection: true,
    logRetention: RetentionDays.ONE_YEAR,
    keyPendingWindow: Duration.days(30),
    throttling: { rateLimit: 500, burstLimit: 1000 },
    logLevel: 'INFO',
    terminationProtection: true,
  },
};
