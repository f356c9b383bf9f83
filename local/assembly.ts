import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CfnResource, CfnTemplate } from './template';

/**
 * The cloud assembly the local cloud runs: the synthesized template plus the bundled Lambda assets.
 * Synthesis (with esbuild bundling) takes tens of seconds, so it is skipped when the inputs that
 * shape the template and the bundles are unchanged: their hash is stored beside the assembly.
 */

/** The repository root (local/ sits directly under it). */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** What decides the template and the bundles. Anything else changing does not need a new synth. */
// docs/openapi.json: bundled into the OpenApi function (functions/handlers/openapi.ts).
const HASHED_INPUTS = ['bin', 'lib', 'functions', 'package-lock.json', 'cdk.json', 'local/synth.ts', 'docs/openapi.json'];
const HASH_FILE = 'payplane-local.json';

export interface CloudAssembly {
  /** Absolute path of the assembly directory (cdk.out or a fixture). */
  dir: string;
  stackName: string;
  template: CfnTemplate;
  /** Whether this run synthesized (false: an up-to-date assembly was reused). */
  synthesized: boolean;
  /** Milliseconds spent synthesizing (0 when reused). */
  synthMs: number;
}

export interface EnsureAssemblyOptions {
  root?: string;
  /** A stage of lib/stage-config.ts (the synth refuses others). @default 'dev' */
  stage?: string;
  /** Assembly directory. @default '<root>/.payplane/cdk.out' (dev), '<root>/.payplane/cdk.out-<stage>' */
  outdir?: string;
  /** Synthesize even if the stored hash matches. */
  force?: boolean;
  log?: (line: string) => void;
}

/**
 * The local cloud's own assembly directory. Separate from the CDK CLI's `cdk.out`, so a
 * `cdk synth -c stage=prod` never leaves the local cloud running a template it did not check.
 */
export const localAssemblyDir = (root: string, stage = 'dev') => join(root, '.payplane', stage === 'dev' ? 'cdk.out' : `cdk.out-${stage}`);

/** Reuses the local assembly if its inputs hash matches, otherwise synthesizes with bundling. */
export async function ensureAssembly(options: EnsureAssemblyOptions = {}): Promise<CloudAssembly> {
  const root = options.root ?? PROJECT_ROOT;
  const stage = options.stage ?? 'dev';
  const outdir = options.outdir ?? localAssemblyDir(root, stage);
  const log = options.log ?? (() => {});
  const hash = inputsHash(root, stage);
  const stored = readHashFile(outdir);
  if (!options.force && stored?.hash === hash && existsSync(join(outdir, 'manifest.json'))) {
    try {
      return { ...loadAssembly(outdir, stored.stackName), synthesized: false, synthMs: 0 };
    } catch {
      // A damaged assembly is simply synthesized again.
    }
  }
  log(`Synthesizing the CDK app (stage ${stage}, bundling on): inputs changed since the last run…`);
  const started = performance.now();
  const stackName = await synthesize({ root, stage, outdir, bundling: true });
  writeFileSync(join(outdir, HASH_FILE), JSON.stringify({ hash, stackName, stage }, null, 2));
  const synthMs = performance.now() - started;
  log(`Synthesized ${stackName} in ${(synthMs / 1000).toFixed(1)} s`);
  return { ...loadAssembly(outdir, stackName), synthesized: true, synthMs };
}

/**
 * The template synthesized without bundling (for tests that need only tables and names). Reuses an
 * up-to-date local assembly when there is one, since bundling does not change the tables.
 */
export async function templateWithoutBundling(options: { root?: string; stage?: string } = {}): Promise<{
  template: CfnTemplate;
  stackName: string;
}> {
  const root = options.root ?? PROJECT_ROOT;
  const stage = options.stage ?? 'dev';
  const cdkOut = localAssemblyDir(root, stage);
  const stored = readHashFile(cdkOut);
  if (stored?.hash === inputsHash(root, stage)) {
    try {
      const { template, stackName } = loadAssembly(cdkOut, stored.stackName);
      return { template, stackName };
    } catch {
      // fall through to a fresh synth
    }
  }
  const outdir = join(root, '.payplane', `synth-nobundle-${process.pid}-${Date.now()}`);
  try {
    const stackName = await synthesize({ root, stage, outdir, bundling: false });
    const { template } = loadAssembly(outdir, stackName);
    return { template, stackName };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** Whether the CDK app exists yet (`lib/app.ts` exporting buildApp). */
export function hasCdkApp(root = PROJECT_ROOT): boolean {
  return existsSync(join(root, 'lib', 'app.ts'));
}

/**
 * Reads a cloud assembly directory (cdk.out or a hand-made fixture of the same layout): the
 * manifest names each stack's template file.
 */
export function loadAssembly(dir: string, stackName?: string): { dir: string; stackName: string; template: CfnTemplate } {
  const manifestPath = join(dir, 'manifest.json');
  if (!existsSync(manifestPath)) throw new Error(`${dir} is not a cloud assembly: it has no manifest.json. Run \`npx cdk synth\` or start without --assembly.`);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as {
    artifacts?: Record<string, { type: string; properties?: { templateFile?: string; stackName?: string }; displayName?: string }>;
  };
  const stacks = Object.entries(manifest.artifacts ?? {})
    .filter(([, a]) => a.type === 'aws:cloudformation:stack')
    .map(([id, a]) => ({ name: a.properties?.stackName ?? id, templateFile: a.properties?.templateFile ?? `${id}.template.json` }));
  const stack = stackName ? stacks.find((s) => s.name === stackName) : stacks.length === 1 ? stacks[0] : undefined;
  if (!stack) {
    throw new Error(
      `Cannot pick a stack in ${dir}: ${stackName ? `no stack named ${stackName}` : `${stacks.length} stacks`} (found: ${stacks.map((s) => s.name).join(', ') || 'none'}).`,
    );
  }
  const template = JSON.parse(readFileSync(join(dir, stack.templateFile), 'utf8')) as CfnTemplate;
  return { dir: resolve(dir), stackName: stack.name, template };
}

/** Absolute path of a Lambda function's bundled code, from its `aws:asset:path` metadata. */
export function assetDirectory(assemblyDir: string, logicalId: string, resource: CfnResource): string {
  const assetPath = resource.Metadata?.['aws:asset:path'];
  if (typeof assetPath !== 'string') {
    const code = resource.Properties?.Code as { ZipFile?: unknown } | undefined;
    if (code?.ZipFile !== undefined) {
      throw new Error(`Function ${logicalId} has inline code (Code.ZipFile), which the local cloud does not run. Use an asset (NodejsFunction).`);
    }
    throw new Error(
      `Function ${logicalId} has no 'aws:asset:path' metadata, so its code cannot be found in the assembly. Synthesize with asset metadata on (the CDK default).`,
    );
  }
  const dir = resolve(assemblyDir, assetPath);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new Error(
      `The code of function ${logicalId} is missing: ${dir} does not exist or is not a directory. Was the app synthesized without bundling? Delete ${join(assemblyDir, HASH_FILE)} to force a new synth.`,
    );
  }
  return dir;
}

/** sha256 over the paths and contents of the synth inputs, plus the stage. */
export function inputsHash(root: string, stage: string): string {
  const hash = createHash('sha256').update(`stage=${stage}\n`);
  for (const input of HASHED_INPUTS) {
    const path = join(root, input);
    if (!existsSync(path)) {
      hash.update(`missing ${input}\n`);
      continue;
    }
    for (const file of listFiles(path)) {
      hash.update(`${relative(root, file)}\n`);
      hash.update(readFileSync(file));
    }
  }
  return hash.digest('hex');
}

function listFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  const out: string[] = [];
  for (const entry of readdirSync(path, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const full = join(path, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(full));
    else if (entry.isFile()) out.push(full);
  }
  return out;
}

function readHashFile(outdir: string): { hash: string; stackName: string } | undefined {
  try {
    return JSON.parse(readFileSync(join(outdir, HASH_FILE), 'utf8')) as { hash: string; stackName: string };
  } catch {
    return undefined;
  }
}

/**
 * Runs local/synth.ts in a child process (aws-cdk-lib and esbuild stay out of this process). It
 * synthesizes into a staging directory first; asset directories are content-addressed, so they
 * are moved into `outdir` only when absent, and a cloud running from `outdir` keeps its code.
 */
async function synthesize(options: { root: string; stage: string; outdir: string; bundling: boolean }): Promise<string> {
  if (!hasCdkApp(options.root)) {
    throw new Error(`No CDK app: ${join(options.root, 'lib', 'app.ts')} does not exist yet (it must export buildApp).`);
  }
  const staging = `${options.outdir}.staging-${process.pid}-${Date.now()}`;
  mkdirSync(dirname(staging), { recursive: true });
  try {
    const args = ['--import', 'tsx', join(PROJECT_ROOT, 'local', 'synth.ts'), '--stage', options.stage, '--outdir', staging];
    if (!options.bundling) args.push('--no-bundling');
    const output = await run(process.execPath, args, options.root);
    const result = JSON.parse(output.trim().split('\n').pop() ?? '{}') as { stackName?: string };
    if (!result.stackName) throw new Error(`local/synth.ts did not report a stack name. Output:\n${output}`);
    mkdirSync(options.outdir, { recursive: true });
    for (const entry of readdirSync(staging)) {
      const target = join(options.outdir, entry);
      if (entry.startsWith('asset.') && existsSync(target)) continue;
      rmSync(target, { recursive: true, force: true });
      renameSync(join(staging, entry), target);
    }
    return result.stackName;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

function run(command: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CDK_DISABLE_VERSION_CHECK: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolvePromise(stdout);
      else reject(new Error(`Synthesis failed (exit ${code}):\n${stderr || stdout}`));
    });
  });
}
