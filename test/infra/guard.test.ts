import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { VALIDATION_REPORT_FILE } from 'aws-cdk-lib/cx-api';
import { afterAll, describe, expect, it } from 'vitest';
import { addComplianceChecks } from '../../lib/app';
import { STAGES } from '../../lib/stage-config';
import { cleanUp, synth } from './template';

afterAll(cleanUp);

/**
 * AWS CloudFormation Guard with the Control Tower proactive controls runs on every synthesized stage as a
 * policy-validation plugin (lib/app.ts addComplianceChecks), in this tier and at `cdk synth`.
 */
describe.each(STAGES)('stage %s', (stage) => {
  it('passes cfn-guard with the Control Tower rules', () => {
    // Act: synth ran the plugin; a finding without an acknowledgement would have thrown.
    const report = JSON.parse(readFileSync(join(synth(stage).assembly.directory, VALIDATION_REPORT_FILE), 'utf8')) as {
      pluginReports: { pluginName: string; conclusion: string; violations: unknown[] }[];
    };
    // Assess
    const guard = report.pluginReports.find((p) => p.pluginName.includes('cfnguard'));
    expect(guard).toMatchObject({ conclusion: 'success', violations: [] });
  });

  it('lets services invoke functions only for this account (SourceAccount on every Lambda permission)', () => {
    const permissions = Object.values(synth(stage).template.findResources('AWS::Lambda::Permission')) as { Properties: { SourceAccount?: string } }[];
    expect(permissions.length).toBeGreaterThan(10);
    expect(permissions.filter((p) => p.Properties.SourceAccount !== '000000000000')).toEqual([]);
  });
});

describe('the plugin itself', () => {
  it('fails synth on a Control Tower finding nobody acknowledged', () => {
    // Arrange: a queue without a dead-letter queue (CT.SQS.PR.1).
    const outdir = mkdtempSync(join(tmpdir(), 'payplane-guard-'));
    try {
      const app = new App({ outdir });
      new Queue(new Stack(app, 'GuardProbe', { env: { account: '000000000000', region: 'us-east-1' } }), 'NoDlq', { enforceSSL: true });
      addComplianceChecks(app);
      // Act / Assess
      expect(() => app.synth()).toThrow(/CT\.SQS\.PR\.1/);
      expect(readFileSync(join(outdir, VALIDATION_REPORT_FILE), 'utf8')).toContain('sqs_dlq_check');
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });
});
