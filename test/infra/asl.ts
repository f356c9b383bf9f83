import { createRequire } from 'node:module';
import { stateMachinesOf, unsupportedFeatures } from '../../local/stepfunctions';
import { LocalStack, type CfnTemplate } from '../../local/template';

/**
 * Checks every state machine definition of a synthesized template twice: against the Amazon States Language
 * (asl-validator, ARNs and paths included), and against what the local runner (aws-local-stepfunctions 3.0.0)
 * can run, so that a definition that only AWS could run (Distributed Map: ItemReader, ItemBatcher,
 * ResultWriter, ProcessorConfig.Mode DISTRIBUTED; JSONata; variables) fails the infra tier instead of the
 * local cloud's startup. Definitions are read as the local cloud reads them (intrinsics resolved).
 */

type AslValidator = (definition: unknown, options?: { checkPaths?: boolean; checkArn?: boolean }) => { isValid: boolean; errorsText: (separator?: string) => string };
const aslValidator = createRequire(import.meta.url)('asl-validator') as AslValidator;

export interface DefinitionProblems {
  logicalId: string;
  /** asl-validator's errors. */
  invalid: string[];
  /** Features the local runner lacks, one line per use naming the state. */
  unsupportedLocally: string[];
}

export function checkStateMachines(template: CfnTemplate, stackName = 'Payplane-check'): DefinitionProblems[] {
  const stack = new LocalStack(structuredClone(template), { stackName });
  return stateMachinesOf(stack).map((machine) => {
    // The validator writes default QueryLanguage fields into what it is given: hand it a copy.
    const result = aslValidator(structuredClone(machine.definition), { checkPaths: true, checkArn: true });
    return {
      logicalId: machine.logicalId,
      invalid: result.isValid ? [] : result.errorsText('\n').split('\n').filter(Boolean),
      unsupportedLocally: unsupportedFeatures(machine.definition),
    };
  });
}

/** Throws one error naming every state machine with a problem (what the infra tests call). */
export function assertStateMachinesRunLocally(template: CfnTemplate, stackName?: string): void {
  const problems = checkStateMachines(template, stackName).filter((p) => p.invalid.length || p.unsupportedLocally.length);
  if (problems.length === 0) return;
  throw new Error(
    problems
      .map((p) => `${p.logicalId}: ${[...p.invalid.map((e) => `invalid ASL: ${e}`), ...p.unsupportedLocally.map((u) => `not runnable by aws-local-stepfunctions: ${u}`)].join('; ')}`)
      .join('\n'),
  );
}
