import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { APIGatewayClient, FlushStageAuthorizersCacheCommand } from '@aws-sdk/client-api-gateway';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import type { VerifierDeps } from '../functions/audit/heads';
import { z } from 'zod';
import type { MerchantDeps } from '../functions/merchants/service';
import type { OperatorEndpoint } from './operator-client';

/**
 * Where a CLI command acts: the local cloud (default, from .payplane/local.json) or a deployed
 * stage (`--stage`, resolved from the CloudFormation stack `Payplane-<stage>` with the
 * operator's own credentials from the default provider chain). Changes go through the operator API
 * (`operator()`, SigV4-signed); reads go to the table (`merchants.db`) with the same credentials.
 */
export interface Target {
  kind: 'local' | 'stage';
  /** For messages: "local cloud (http://127.0.0.1:4566)", "stage dev (stack Payplane-dev, eu-west-1)". */
  label: string;
  /** The table, for the read-only commands (settlements, fx list): the operator may read, never write, it. */
  merchants: MerchantDeps;
  /** The operator API the write commands call: the stage's URL, region and the operator's credentials. */
  operator(): Promise<OperatorEndpoint>;
  /** The merchant API's base URL, and the seeded demo merchant's key (the local cloud's), for the merchant commands. */
  api(): Promise<{ url: string; demoKey?: string }>;
  restApiId: string;
  stageName: string;
  /** Empties the REST API stage's authorizer cache so a revoked key is refused at once, not after the TTL. */
  flushAuthorizerCache(): Promise<void>;
  /** Same, as a command the operator can run by hand if the flush failed. */
  flushHint: string;
  /** A Step Functions client to watch settlement executions (the operator API starts them). */
  settlement(): { sfn: Pick<SFNClient, 'send'> };
  /** Where the signed audit heads are and the key that signed them (undefined: a stage or cloud without them). */
  auditHeads(): VerifierDeps | undefined;
  /** Turns a connection failure into an actionable message (the local cloud is not running). */
  explain(error: unknown): string | undefined;
}

export interface TargetOptions {
  stage?: 'dev' | 'prod';
  region?: string;
  profile?: string;
}

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const LOCAL_FILE_ENV = 'PAYPLANE_LOCAL_FILE';

const localFileSchema = z.object({
  apiUrl: z.string(),
  region: z.string().min(1),
  stage: z.string().min(1),
  restApiId: z.string().min(1),
  endpoints: z.object({ dynamodb: z.url(), kms: z.string().optional(), apigateway: z.url(), sfn: z.url().optional(), s3: z.url().optional() }),
  /** The signed audit heads' bucket and signing key (functions/audit/heads.ts). */
  auditHeads: z.object({ bucket: z.string().min(3), keyArn: z.string().startsWith('arn:') }).optional(),
  /** State machine ARNs by logical id (the settlement's is `SettlementStateMachine<hash>`). */
  stateMachines: z.record(z.string(), z.string()).optional(),
  tables: z.object({ main: z.string().min(3), idempotency: z.string().optional() }),
  /** The stack's key (tools that inspect sealed values; the CLI seals nothing: the operator API does). */
  kmsKeyArn: z.string().startsWith('arn:').optional(),
  /** The operator principal's keys: the local cloud checks them against docs/operator-policy.json. */
  operatorCredentials: z.object({ accessKeyId: z.string().min(1), secretAccessKey: z.string().min(1) }).optional(),
  /** The seeded demo merchant: the merchant commands act for it unless --api-key names another. */
  demo: z.object({ merchantId: z.string(), secretKey: z.string().min(1) }).optional(),
});
export type LocalCloudFile = z.infer<typeof localFileSchema>;

/** A local.json without operator keys (a stand-in in tests) gets the local cloud's administrator key. */
const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

export async function resolveTarget(
  options: TargetOptions,
  env: NodeJS.ProcessEnv = process.env,
  aws: { cloudFormation?: Pick<CloudFormationClient, 'send'> } = {},
): Promise<Target> {
  return options.stage ? stageTarget({ ...options, stage: options.stage }, aws) : localTarget(env);
}

export function localTarget(env: NodeJS.ProcessEnv = process.env): Target {
  const file = env[LOCAL_FILE_ENV] ?? resolve(ROOT, '.payplane', 'local.json');
  if (!existsSync(file)) {
    throw new Error(
      `The local cloud is not running: ${file} does not exist. Start it with \`npm start\` in another terminal, ` +
        'or target a deployed stage with --stage dev|prod.',
    );
  }
  let local: LocalCloudFile;
  try {
    local = localFileSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  } catch (error) {
    throw new Error(`${file} is not a valid local cloud file (${(error as Error).message}). Restart the local cloud with \`npm start\`.`);
  }
  const clientConfig = { region: local.region, credentials: local.operatorCredentials ?? LOCAL_CREDENTIALS, maxAttempts: 2 };
  const db = DynamoDBDocumentClient.from(new DynamoDBClient({ ...clientConfig, endpoint: local.endpoints.dynamodb }), {
    marshallOptions: { removeUndefinedValues: true },
  });
  const apiGateway = new APIGatewayClient({ ...clientConfig, endpoint: local.endpoints.apigateway });
  return {
    kind: 'local',
    label: `local cloud (${local.apiUrl})`,
    merchants: { db, tableName: local.tables.main },
    operator: async () => ({ apiUrl: local.apiUrl, region: local.region, credentials: clientConfig.credentials }),
    api: async () => ({ url: local.apiUrl, demoKey: local.demo?.secretKey }),
    restApiId: local.restApiId,
    stageName: local.stage,
    flushAuthorizerCache: async () => {
      await apiGateway.send(new FlushStageAuthorizersCacheCommand({ restApiId: local.restApiId, stageName: local.stage }));
    },
    flushHint: 'restart the local cloud (npm start)',
    settlement: () => {
      if (!local.endpoints.sfn) {
        throw new Error(`The local cloud at ${local.apiUrl} runs no settlement state machine (${file} lists no Step Functions endpoint): restart it with \`npm start\` to run the current template.`);
      }
      return { sfn: new SFNClient({ ...clientConfig, endpoint: local.endpoints.sfn }) };
    },
    auditHeads: () =>
      local.auditHeads && local.endpoints.s3 && local.endpoints.kms
        ? {
            s3: new S3Client({ ...clientConfig, endpoint: local.endpoints.s3, forcePathStyle: true }),
            kms: new KMSClient({ ...clientConfig, endpoint: local.endpoints.kms }),
            bucket: local.auditHeads.bucket,
            keyId: local.auditHeads.keyArn,
          }
        : undefined,
    explain: (error) =>
      isConnectionFailure(error)
        ? `The local cloud is not answering at ${local.apiUrl} and ${local.endpoints.dynamodb} (${file} was left by a run that has stopped?). ` +
          'Start it with `npm start`, or target a deployed stage with --stage dev|prod.'
        : undefined,
  };
}

async function stageTarget(
  options: TargetOptions & { stage: 'dev' | 'prod' },
  aws: { cloudFormation?: Pick<CloudFormationClient, 'send'> },
): Promise<Target> {
  const stackName = `Payplane-${options.stage}`;
  // Region and credentials come from --region/--profile, else the default chain (env, ~/.aws, SSO, instance role).
  const clientConfig = { region: options.region, profile: options.profile };
  const cloudFormation = aws.cloudFormation ?? new CloudFormationClient(clientConfig);
  let outputs: Record<string, string>;
  try {
    const { Stacks } = await cloudFormation.send(new DescribeStacksCommand({ StackName: stackName }));
    outputs = Object.fromEntries((Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']));
  } catch (error) {
    throw new Error(explainAwsError(error, `describing the stack ${stackName}`, options) ?? (error as Error).message, {
      cause: error,
    });
  }
  const need = (key: string) => {
    const value = outputs[key];
    if (!value) {
      throw new Error(`Stack ${stackName} has no output '${key}'. Deploy the current version: npx cdk deploy -c stage=${options.stage}.`);
    }
    return value;
  };
  const tableName = need('TableName');
  const restApiId = need('RestApiId');
  const stageName = need('StageName');
  const db = DynamoDBDocumentClient.from(new DynamoDBClient(clientConfig), { marshallOptions: { removeUndefinedValues: true } });
  const apiGateway = new APIGatewayClient(clientConfig);
  const where = options.region ? `, ${options.region}` : '';
  const profile = options.profile ? ` --profile ${options.profile}` : '';
  const region = options.region ? ` --region ${options.region}` : '';
  const sfn = new SFNClient(clientConfig);
  return {
    kind: 'stage',
    label: `stage ${options.stage} (stack ${stackName}${where})`,
    merchants: { db, tableName },
    // The SDK's own default chain (--profile, env, ~/.aws, SSO, instance role), as the other clients sign with.
    operator: async () => ({ apiUrl: need('ApiUrl'), region: options.region ?? (await sfn.config.region()), credentials: sfn.config.credentials }),
    api: async () => ({ url: need('ApiUrl') }),
    restApiId,
    stageName,
    flushAuthorizerCache: async () => {
      await apiGateway.send(new FlushStageAuthorizersCacheCommand({ restApiId, stageName }));
    },
    flushHint: `aws apigateway flush-stage-authorizers-cache --rest-api-id ${restApiId} --stage-name ${stageName}${region}${profile}`,
    settlement: () => ({ sfn }),
    auditHeads: () => ({ s3: new S3Client(clientConfig), kms: new KMSClient(clientConfig), bucket: need('AuditHeadsBucketName'), keyId: need('AuditHeadsKeyArn') }),
    explain: (error) => explainAwsError(error, `calling AWS for ${stackName}`, options),
  };
}

function explainAwsError(error: unknown, doing: string, options: TargetOptions): string | undefined {
  const e = error as { name?: string; message?: string };
  const message = e?.message ?? String(error);
  if (e?.name === 'CredentialsProviderError' || /credential/i.test(message) && /could not load|missing/i.test(message)) {
    return `No AWS credentials for ${doing}: configure them (aws configure, aws sso login) or pass --profile <name>. (${message})`;
  }
  if (/region is missing/i.test(message)) {
    return `No AWS region for ${doing}: pass --region <region>, or set AWS_REGION or a region in your profile.`;
  }
  if (e?.name === 'ValidationError' && /does not exist/i.test(message)) {
    return `${message}. Check --stage and --region${options.region ? ` (used: ${options.region})` : ''}, and that it is deployed (npx cdk deploy -c stage=${options.stage}).`;
  }
  if (e?.name === 'AccessDeniedException' || e?.name === 'AccessDenied' || /not authorized/i.test(message)) {
    return `Access denied ${doing}: your IAM identity lacks a permission the operator CLI needs (see docs/operations.md, "Operator CLI"). (${message})`;
  }
  return undefined;
}

export function isConnectionFailure(error: unknown): boolean {
  for (let e = error as { code?: string; name?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.code === 'ECONNREFUSED' || e.code === 'ECONNRESET' || e.code === 'ENOTFOUND' || e.name === 'TimeoutError') return true;
  }
  return false;
}
