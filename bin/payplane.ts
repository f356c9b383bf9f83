#!/usr/bin/env -S npx tsx
/**
 * CDK app entry (`cdk.json` → `npx tsx bin/payplane.ts`).
 *
 *   npx cdk synth -c stage=prod -q          # offline: placeholder account 000000000000, us-east-1
 *   npx cdk deploy -c stage=dev -c account=123456789012 -c region=eu-west-1
 *   npx cdk deploy -c stage=prod -c account=123456789012 -c region=eu-west-1 --all   # with Payplane-prod-BackupCopy
 */
import { readFileSync } from 'node:fs';
import { CONTEXT_ENV, CONTEXT_OVERFLOW_LOCATION_ENV } from 'aws-cdk-lib/cx-api';
import { addComplianceChecks, buildApp, optionsFromContext } from '../lib/app';

/** The context the CDK CLI hands to the app (cdk.json, cdk.context.json and -c flags), read like `App` does. */
function cliContext(): Record<string, unknown> {
  const inline = process.env[CONTEXT_ENV];
  const overflow = process.env[CONTEXT_OVERFLOW_LOCATION_ENV];
  return {
    ...(inline ? (JSON.parse(inline) as Record<string, unknown>) : {}),
    ...(overflow ? (JSON.parse(readFileSync(overflow, 'utf8')) as Record<string, unknown>) : {}),
  };
}

let options: ReturnType<typeof optionsFromContext>;
try {
  options = optionsFromContext(cliContext());
} catch (error) {
  console.error(`payplane: ${(error as Error).message}`);
  process.exit(1);
}

const { app } = buildApp(options);
addComplianceChecks(app);
