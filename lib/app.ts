import { App, Validations } from 'aws-cdk-lib';
import { BUNDLING_STACKS, VALIDATE_AGAINST_DEFAULT_RULES } from 'aws-cdk-lib/cx-api';
import { CfnGuardValidator } from '@cdklabs/cdk-validator-cfnguard';
import { AwsSolutionsChecks } from 'cdk-nag';
import { BackupCopyStack, backupNames } from './constructs/backup';
import { applyGuardControls } from './constructs/guard';
import { PayplaneStack } from './payplane-stack';
import { parseFeeScheduleSetting, parseStage, STAGE_SETTINGS, type Stage } from './stage-config';
import type { FeeScheduleOverride } from '../functions/ledger/fees';

export { parseStage, STAGES, type Stage } from './stage-config';

/** Account and region used when none is given, so that an offline synth still has a concrete environment. */
export const PLACEHOLDER_ACCOUNT = '000000000000';
export const PLACEHOLDER_REGION = 'us-east-1';

export interface BuildAppOptions {
  /** The stage to build; the stack id is `Payplane-<stage>`. */
  stage: Stage;
  /**
   * Whether NodejsFunction bundles handlers with esbuild. `false` sets the context `aws:cdk:bundling-stacks`
   * to `[]` (infrastructure tests never run esbuild).
   * @default true
   */
  bundling?: boolean;
  /**
   * Cloud assembly directory.
   * @default - `CDK_OUTDIR` when run by the CDK CLI, else a fresh temporary directory
   */
  outdir?: string;
  /**
   * Target account. The stack always has a concrete environment (TableV2 with a customer-managed key needs one).
   * @default '000000000000'
   */
  account?: string;
  /**
   * Target region.
   * @default 'us-east-1'
   */
  region?: string;
  /**
   * The platform fee schedule's changes to the default (context `feeSchedule`).
   * @default - the stage's `feeSchedule` setting, if any
   */
  feeSchedule?: FeeScheduleOverride;
}

/**
 * Builds the CDK app with the one Payplane stack. Always turns CloudFormation's default-rule validation
 * findings into synth errors (`@aws-cdk/core:validateAgainstDefaultRules`), in the CLI and in tests alike.
 */
export function buildApp(opts: BuildAppOptions): { app: App; stack: PayplaneStack; backupCopyStack?: BackupCopyStack } {
  const stage = parseStage(opts.stage);
  const app = new App({
    outdir: opts.outdir,
    // Defaults: context from cdk.json / -c overrides these.
    context: { [VALIDATE_AGAINST_DEFAULT_RULES]: true },
    // Final say: must win over the CLI, which passes its own bundling-stacks.
    postCliContext: opts.bundling === false ? { [BUNDLING_STACKS]: [] } : {},
  });
  const stack = new PayplaneStack(app, `Payplane-${stage}`, {
    stage,
    feeSchedule: opts.feeSchedule,
    env: { account: opts.account ?? PLACEHOLDER_ACCOUNT, region: opts.region ?? PLACEHOLDER_REGION },
  });
  applyGuardControls(stack, STAGE_SETTINGS[stage]);
  // The copy region's vault (prod): its own stack, deployed first (`npx cdk deploy --all` follows the dependency).
  const copy = STAGE_SETTINGS[stage].backup.copy;
  let backupCopyStack: BackupCopyStack | undefined;
  if (copy) {
    backupCopyStack = new BackupCopyStack(app, backupNames(stage).copyStack, { stage, env: { account: stack.account, region: copy.region } });
    applyGuardControls(backupCopyStack, STAGE_SETTINGS[stage]);
    stack.addStackDependency(backupCopyStack, 'the backup plan copies recovery points into its vault');
  }
  return { app, stack, backupCopyStack };
}

/**
 * Registers the policy-validation plugins: the cdk-nag AwsSolutions pack (cdk-nag 3 is a policy-validation
 * plugin, not an Aspect) and AWS CloudFormation Guard with the Control Tower proactive controls
 * (@cdklabs/cdk-validator-cfnguard ships the binary: it runs offline). Findings that are not acknowledged
 * with a reason fail `cdk synth` (errors) or are listed in `policy-validation-report.json` (warnings).
 * cdk-nag's acknowledgements are copied into the template metadata (`cdk_nag.rules_to_suppress`); Guard's
 * live in lib/constructs/guard.ts.
 */
export function addComplianceChecks(app: App): AwsSolutionsChecks {
  const checks = new AwsSolutionsChecks(app, { verbose: true, writeSuppressionsToCloudFormation: true });
  Validations.of(app).addPlugins(checks, new CfnGuardValidator({ controlTowerRulesEnabled: true }));
  return checks;
}

/**
 * Resolves `buildApp` options from CDK context (`-c stage=prod -c account=… -c region=… -c feeSchedule='{…}'`) and the
 * environment: stage defaults to `dev` (a stage not in STAGES is refused); account and region fall back to
 * `CDK_DEFAULT_ACCOUNT` / `CDK_DEFAULT_REGION` (set by the CLI from the current credentials), then to the
 * placeholders so that an offline synth works.
 */
export function optionsFromContext(
  context: Readonly<Record<string, unknown>>,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Required<Pick<BuildAppOptions, 'stage' | 'account' | 'region'>> & Pick<BuildAppOptions, 'feeSchedule'> {
  const text = (key: string): string | undefined => {
    const value = context[key];
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'string') {
      throw new Error(`Context '${key}' must be a string, got ${JSON.stringify(value)}. Pass it as -c ${key}=<value>.`);
    }
    return value;
  };
  const feeSchedule = parseFeeScheduleSetting(context.feeSchedule, "Context 'feeSchedule'");
  return {
    stage: parseStage(text('stage') ?? 'dev'),
    account: text('account') ?? env.CDK_DEFAULT_ACCOUNT ?? PLACEHOLDER_ACCOUNT,
    region: text('region') ?? env.CDK_DEFAULT_REGION ?? PLACEHOLDER_REGION,
    ...(feeSchedule ? { feeSchedule } : {}),
  };
}
