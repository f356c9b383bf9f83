import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CfnTemplate } from '../../local/template';
import { sfnFixture } from '../integration/fixtures/sfn/app';
import { assertStateMachinesRunLocally, checkStateMachines } from './asl';

/** The ASL helper (test/infra/asl.ts) on the Step Functions fixture app's synthesized template and on Distributed Map. */

const fixture = () => JSON.parse(readFileSync(join(sfnFixture(), 'Payplane-sfnfixture.template.json'), 'utf8')) as CfnTemplate;
const withDefinition = (definition: unknown): CfnTemplate => ({
  Resources: {
    Role: { Type: 'AWS::IAM::Role', Properties: {} },
    Machine: { Type: 'AWS::StepFunctions::StateMachine', Properties: { DefinitionString: JSON.stringify(definition), RoleArn: { 'Fn::GetAtt': ['Role', 'Arn'] } } },
  },
});
const fn = 'arn:aws:lambda:us-east-1:000000000000:function:Work';

describe('ASL checks of synthesized state machines', () => {
  it("passes the fixture's definitions (lambda:invoke, function ARN, inline Map, Choice, Retry, Catch)", () => {
    const problems = checkStateMachines(fixture());
    expect(problems.map((p) => p.logicalId).sort()).toEqual([expect.stringMatching(/^Denied/), expect.stringMatching(/^Pipeline/)]);
    expect(problems.every((p) => p.invalid.length === 0 && p.unsupportedLocally.length === 0)).toBe(true);
    expect(() => assertStateMachinesRunLocally(fixture())).not.toThrow();
  });

  it('fails on a Distributed Map (ItemReader, ItemBatcher, ResultWriter, Mode DISTRIBUTED), naming each use', () => {
    const template = withDefinition({
      StartAt: 'Each',
      States: {
        Each: {
          Type: 'Map',
          ItemReader: { Resource: 'arn:aws:states:::s3:getObject', ReaderConfig: { InputType: 'JSON' }, Parameters: { Bucket: 'b', Key: 'k' } },
          ItemBatcher: { MaxItemsPerBatch: 100 },
          ResultWriter: { Resource: 'arn:aws:states:::s3:putObject', Parameters: { Bucket: 'b', Prefix: 'out' } },
          ItemProcessor: { ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' }, StartAt: 'Work', States: { Work: { Type: 'Task', Resource: fn, End: true } } },
          End: true,
        },
      },
    });
    const [problem] = checkStateMachines(template);
    expect(problem!.invalid).toEqual([]);
    expect(problem!.unsupportedLocally).toEqual([
      'Each: ItemReader (Distributed Map)',
      'Each: ItemBatcher (Distributed Map)',
      'Each: ResultWriter (Distributed Map)',
      'Each: ProcessorConfig.Mode DISTRIBUTED (Distributed Map)',
    ]);
    expect(() => assertStateMachinesRunLocally(template)).toThrow(/Machine: not runnable by aws-local-stepfunctions: Each: ItemReader/);
  });

  it('fails on invalid ASL (a transition to a state that does not exist)', () => {
    const template = withDefinition({ StartAt: 'A', States: { A: { Type: 'Task', Resource: fn, Next: 'Nowhere' } } });
    expect(checkStateMachines(template)[0]!.invalid.join('\n')).toMatch(/Nowhere/);
    expect(() => assertStateMachinesRunLocally(template)).toThrow(/invalid ASL/);
  });
});
