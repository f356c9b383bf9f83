import * as z from 'zod';

/**
 * The environment every function gets from the template (lib/constructs/payplane-function.ts).
 * Parsed once per cold start so a missing variable fails loudly at init, not mid-request.
 */
const schema = z.object({
  TABLE_NAME: z.string().min(3),
  IDEMPOTENCY_TABLE_NAME: z.string().min(3).optional(),
  KMS_KEY_ARN: z.string().startsWith('arn:').optional(),
  /** The stage's public base URL (no trailing slash), set by the stack: every public URL starts with it. */
  PUBLIC_BASE_URL: z.url().optional(),
  // lib/stage-config.ts STAGES (not imported: it pulls in aws-cdk-lib).
  STAGE: z.enum(['dev', 'prod', 'test']).default('dev'),
});

export type Config = z.infer<typeof schema>;

let cached: Config | undefined;

export function config(): Config {
  cached ??= schema.parse(process.env);
  return cached;
}

export function required<K extends keyof Config>(key: K): NonNullable<Config[K]> {
  const value = config()[key];
  if (value === undefined) throw new Error(`Environment variable ${String(key)} is not set for this function`);
  return value as NonNullable<Config[K]>;
}

/** The stage's public base URL from the stack; never the request's Host, which the caller chooses. */
export function publicBaseUrl(): string {
  return required('PUBLIC_BASE_URL').replace(/\/+$/, '');
}
