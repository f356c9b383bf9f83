import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { localAssemblyDir, PROJECT_ROOT } from '../../local/assembly';
import { startLocalCloud, type LocalCloud } from '../../local/cloud';
import type { CfnTemplate } from '../../local/template';

/**
 * Black box: the synthesized (bundled) assembly the e2e tier runs, with one grant deleted from the
 * template, as a broken `lib/` change would synthesize it. The local cloud started from it must answer
 * the route as AWS would (the function gets AccessDeniedException, the API its 500 error shape) and
 * name the refused action in its log.
 */
// The assembly the e2e tier's global setup synthesized (or found up to date) for its stage.
const ASSEMBLY = localAssemblyDir(PROJECT_ROOT, inject('localCloud').stage);
const STACK = 'Payplane-tampered';

function tamperedAssembly(): { dir: string; functionId: string } {
  const manifest = JSON.parse(readFileSync(join(ASSEMBLY, 'manifest.json'), 'utf8')) as { artifacts: Record<string, { type: string; properties?: { templateFile?: string } }> };
  const templateFile = Object.values(manifest.artifacts).find((a) => a.type === 'aws:cloudformation:stack')!.properties!.templateFile!;
  const template = JSON.parse(readFileSync(join(ASSEMBLY, templateFile), 'utf8')) as CfnTemplate;
  const functionId = Object.keys(template.Resources).find((id) => /^GetBalanceFunction[0-9A-F]{8}$/.test(id))!;
  const policyId = Object.keys(template.Resources).find((id) => /^GetBalanceServiceRoleDefaultPolicy/.test(id))!;
  const document = template.Resources[policyId]!.Properties!.PolicyDocument as { Statement: { Action: string | string[] }[] };
  const before = document.Statement.length;
  // Delete the function's DynamoDB statements (its read grants on the main table and its gsi1).
  document.Statement = document.Statement.filter((s) => ![s.Action].flat().some((a) => a.startsWith('dynamodb:')));
  if (document.Statement.length === before) throw new Error(`Expected DynamoDB statements in ${policyId}, found none.`);
  const dir = mkdtempSync(join(tmpdir(), 'payplane-tampered-'));
  writeFileSync(join(dir, 'tampered.template.json'), JSON.stringify(template));
  for (const entry of readdirSync(ASSEMBLY)) if (entry.startsWith('asset.')) symlinkSync(join(ASSEMBLY, entry), join(dir, entry));
  writeFileSync(
    join(dir, 'manifest.json'),
    JSON.stringify({ version: '48.0.0', artifacts: { [STACK]: { type: 'aws:cloudformation:stack', environment: 'aws://000000000000/us-east-1', properties: { templateFile: 'tampered.template.json', stackName: STACK } } } }),
  );
  return { dir, functionId };
}

describe('a synthesized template with a function’s DynamoDB grant deleted', () => {
  let cloud: LocalCloud;
  let functionId: string;
  let dir: string;
  const stderr: string[] = [];

  beforeAll(async () => {
    ({ dir, functionId } = tamperedAssembly());
    const write = process.stderr.write.bind(process.stderr);
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
      stderr.push(String(chunk));
      return (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
    });
    // Its own DynamoDB Local: the e2e cloud's endpoint checks IAM for its own template's principals only.
    cloud = await startLocalCloud({ assemblyDir: dir, port: 0, inMemory: true, quiet: true, schedules: false, eventSources: false, dataDir: join(dir, '.payplane') });
  });
  afterAll(async () => {
    await cloud?.stop();
    vi.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers the route with the API’s 500 error shape, and the local cloud logs the refused action', async () => {
    // Act
    const res = await fetch(`${cloud.url}/v1/balance`, { headers: { Authorization: `Bearer ${cloud.demo!.secretKey}` } });
    const body = (await res.json()) as { error: { type: string; message: string; request_id: string } };
    // Assess: the merchant sees a plain 500, never the AWS message; the operator sees the action.
    expect(res.status).toBe(500);
    expect(body.error).toMatchObject({ type: 'api_error' });
    expect(body.error.message).not.toMatch(/dynamodb|not authorized/i);
    const refused = stderr.join('').split('\n').filter((l) => l.startsWith('[iam] REFUSED'));
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((l) => l.startsWith(`[iam] REFUSED ${functionId}: User: arn:aws:sts::000000000000:assumed-role/${STACK}-GetBalanceServiceRole`))).toBe(true);
    expect(refused[0]).toMatch(/is not authorized to perform: dynamodb:(Query|BatchGetItem|GetItem) on resource: arn:aws:dynamodb:us-east-1:000000000000:table\/Payplane-tampered-MainTable\w+ because no identity-based policy allows the dynamodb:\w+ action$/);
    expect(cloud.iamReport().principals[functionId]!.refusals.length).toBeGreaterThan(0);
  });
});
