/**
 * Synthesizes the CDK app in-process (no CDK CLI, so no notices or version checks over the network).
 * Run by local/assembly.ts in a child process:
 *   node --import tsx local/synth.ts --stage dev --outdir cdk.out [--no-bundling]
 * Prints one JSON line: {"stackName": "..."}.
 */
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

/** The contract of lib/app.ts (docs/CONTRACT-draft.md). Imported by path so this file type-checks on its own. */
interface AppModule {
  buildApp(opts: { stage: string; bundling?: boolean; outdir?: string }): {
    app: { synth(): unknown };
    stack: { stackName: string };
  };
}

const { values } = parseArgs({
  options: {
    stage: { type: 'string', default: 'dev' },
    outdir: { type: 'string', default: 'cdk.out' },
    'no-bundling': { type: 'boolean', default: false },
  },
});

// buildApp refuses an unknown stage, naming the ones there are.
const stage = values.stage!;
// What the CDK CLI passes by default: the local cloud finds each function's bundle through the
// `aws:asset:path` metadata, which an App only writes when asked to.
process.env.CDK_CONTEXT_JSON = JSON.stringify({
  ...(process.env.CDK_CONTEXT_JSON ? (JSON.parse(process.env.CDK_CONTEXT_JSON) as object) : {}),
  'aws:cdk:enable-asset-metadata': true,
});
const appModule = join(import.meta.dirname, '..', 'lib', 'app.ts');
const { buildApp } = (await import(pathToFileURL(appModule).href)) as AppModule;
const { app, stack } = buildApp({ stage, bundling: !values['no-bundling'], outdir: resolve(values.outdir!) });
app.synth();
process.stdout.write(`\n${JSON.stringify({ stackName: stack.stackName })}\n`);
