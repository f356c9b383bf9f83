import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PROJECT_ROOT } from './assembly';
import type { UsageReport } from './iam';

/**
 * The IAM usage report of a local cloud run (local/iam.ts `report()`), and the check the e2e tier ends
 * with: every granted action was used by some test, or is listed with a reason in
 * docs/iam-unused-grants.json. `npm run iam-report` prints the last e2e run's report.
 */

export const REPORT_FILE = join(PROJECT_ROOT, '.payplane', 'iam-report.json');
export const REASONS_FILE = join(PROJECT_ROOT, 'docs', 'iam-unused-grants.json');

export interface UnusedGrantReason {
  /** Regular expression on the principal (function logical id, or `operator`). */
  principal: string;
  /** Regular expression on the grant: `<action> <resource>[ (<condition keys>)]`. */
  grant: string;
  reason: string;
}

export function loadReasons(file = REASONS_FILE): UnusedGrantReason[] {
  return (JSON.parse(readFileSync(file, 'utf8')) as { reasons: UnusedGrantReason[] }).reasons;
}

/** Unused grants no reason covers, refusals, and reasons that no longer match anything (stale). */
export function checkReport(report: UsageReport, reasons: UnusedGrantReason[]): { unlisted: string[]; refusals: string[]; stale: UnusedGrantReason[] } {
  const unlisted: string[] = [];
  const refusals: string[] = [];
  const matched = new Set<UnusedGrantReason>();
  for (const [name, p] of Object.entries(report.principals)) {
    for (const grant of p.unused) {
      const reason = reasons.find((r) => new RegExp(`^(?:${r.principal})$`).test(name) && new RegExp(`^(?:${r.grant})$`).test(grant));
      if (reason) matched.add(reason);
      else unlisted.push(`${name}: ${grant}`);
    }
    for (const refusal of p.refusals) refusals.push(`${name}: ${refusal}`);
  }
  return { unlisted, refusals, stale: reasons.filter((r) => !matched.has(r)) };
}

export function formatReport(report: UsageReport, reasons: UnusedGrantReason[] = []): string {
  const lines = [`IAM usage (mode ${report.mode})`];
  let used = 0;
  let unused = 0;
  for (const [name, p] of Object.entries(report.principals)) {
    used += p.used.length;
    unused += p.unused.length;
    lines.push('', `${name}  (${p.arn})`, `  used (${p.used.length}):`, ...p.used.map((u) => `    ${u}`));
    if (p.unused.length) {
      lines.push(`  granted, never used (${p.unused.length}):`);
      for (const g of p.unused) {
        const reason = reasons.find((r) => new RegExp(`^(?:${r.principal})$`).test(name) && new RegExp(`^(?:${r.grant})$`).test(g));
        lines.push(`    ${g}${reason ? `  — ${reason.reason}` : '  — NO REASON (docs/iam-unused-grants.json)'}`);
      }
    }
    if (p.refusals.length) lines.push(`  REFUSED (${p.refusals.length}):`, ...p.refusals.map((r) => `    ${r}`));
  }
  lines.push('', `${Object.keys(report.principals).length} principals, ${used} used action/resource pairs, ${unused} granted but unused.`);
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  if (!existsSync(REPORT_FILE)) {
    process.stderr.write(`${REPORT_FILE} does not exist: run the e2e tier first (npx vitest run --project e2e).\n`);
    process.exit(1);
  }
  const report = JSON.parse(readFileSync(REPORT_FILE, 'utf8')) as UsageReport;
  process.stdout.write(`${formatReport(report, loadReasons())}\n`);
}
