import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalStack, TemplateError, type CfnTemplate } from '../../local/template';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'local-cloud');
const fixture = () =>
  new LocalStack(JSON.parse(readFileSync(join(FIXTURE, 'Payplane-fixture.template.json'), 'utf8')) as CfnTemplate, {
    stackName: 'Payplane-fixture',
  });

const stackWith = (resources: CfnTemplate['Resources'], extra: Partial<CfnTemplate> = {}) =>
  new LocalStack({ Resources: resources, ...extra }, { stackName: 'S' });

describe('template resolver', () => {
  it('resolves pseudo parameters to the local account and region', () => {
    // Prepare
    const stack = stackWith({});
    // Act
    const out = stack.resolve({
      'Fn::Join': [':', [{ Ref: 'AWS::Partition' }, { Ref: 'AWS::Region' }, { Ref: 'AWS::AccountId' }, { Ref: 'AWS::URLSuffix' }, { Ref: 'AWS::StackName' }]],
    });
    // Assess
    expect(out).toBe('aws:us-east-1:000000000000:amazonaws.com:S');
  });

  it('maps Ref and Fn::GetAtt of tables, functions and keys to stable local identities', () => {
    const stack = fixture();
    expect(stack.resolve({ Ref: 'MainTable74195DAB' })).toBe('Payplane-fixture-MainTable74195DAB');
    expect(stack.resolve({ 'Fn::GetAtt': ['MainTable74195DAB', 'Arn'] })).toBe(
      'arn:aws:dynamodb:us-east-1:000000000000:table/Payplane-fixture-MainTable74195DAB',
    );
    expect(stack.resolve({ 'Fn::GetAtt': ['EchoFunctionA1B2C3D4', 'Arn'] })).toBe(
      'arn:aws:lambda:us-east-1:000000000000:function:Payplane-fixture-EchoFunctionA1B2C3D4',
    );
    const keyArn = stack.resolve({ 'Fn::GetAtt': ['DataKey9C0B3FD2', 'Arn'] }) as string;
    expect(keyArn).toMatch(/^arn:aws:kms:us-east-1:000000000000:key\/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // Deterministic: a second stack object of the same template gives the same key id.
    expect(fixture().resolve({ 'Fn::GetAtt': ['DataKey9C0B3FD2', 'Arn'] })).toBe(keyArn);
    expect(stack.resolve({ Ref: 'DataKey9C0B3FD2' })).toBe(keyArn.split('/')[1]);
    expect(stack.resolve({ Ref: 'DataKeyAlias5A2B9F1E' })).toBe('alias/payplane-fixture');
  });

  it('resolves the Lambda integration URI CDK writes (Join of GetAtt) and finds the function back', () => {
    const stack = fixture();
    const method = stack.resource('Apiv1ordersGET1A2B3C4D');
    const uri = stack.resolveString((method.Properties!.Integration as { Uri: unknown }).Uri, 'Uri');
    expect(uri).toBe(
      'arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:000000000000:function:Payplane-fixture-EchoFunctionA1B2C3D4/invocations',
    );
    expect(stack.functionByArn('arn:aws:lambda:us-east-1:000000000000:function:Payplane-fixture-EchoFunctionA1B2C3D4')).toBe('EchoFunctionA1B2C3D4');
  });

  it('handles Fn::Sub with ${Resource}, ${Resource.Attr}, variables and ${!literal}', () => {
    const stack = fixture();
    expect(stack.resolve({ 'Fn::Sub': 'arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${MainTable74195DAB}' })).toBe(
      'arn:aws:dynamodb:us-east-1:000000000000:table/Payplane-fixture-MainTable74195DAB',
    );
    expect(stack.resolve({ 'Fn::Sub': '${EchoFunctionA1B2C3D4.Arn}' })).toBe(stack.functionArn('EchoFunctionA1B2C3D4'));
    expect(stack.resolve({ 'Fn::Sub': ['${x}-${y}-${!Literal}', { x: 'a', y: { Ref: 'AWS::Region' } }] })).toBe('a-us-east-1-${Literal}');
  });

  it('handles Fn::Select over Fn::Split (the AuthorizerUri CDK synthesizes)', () => {
    const stack = fixture();
    const arn = { 'Fn::GetAtt': ['AuthorizerFunction0D7E1A3B', 'Arn'] };
    expect(stack.resolve({ 'Fn::Select': [1, { 'Fn::Split': [':', arn] }] })).toBe('aws');
    expect(stack.resolve({ 'Fn::Select': [3, { 'Fn::Split': [':', arn] }] })).toBe('us-east-1');
  });

  it('evaluates conditions, Fn::If and AWS::NoValue, and skips resources whose condition is false', () => {
    const stack = stackWith(
      {
        Kept: { Type: 'AWS::SNS::Topic', Condition: 'IsDev' },
        Dropped: { Type: 'AWS::SNS::Topic', Condition: 'IsProd' },
      },
      {
        Parameters: { Stage: { Type: 'String', Default: 'dev' } },
        Conditions: {
          IsDev: { 'Fn::Equals': [{ Ref: 'Stage' }, 'dev'] },
          IsProd: { 'Fn::Not': [{ Condition: 'IsDev' }] },
        },
      },
    );
    expect(stack.resourcesOfType('AWS::SNS::Topic').map(([id]) => id)).toEqual(['Kept']);
    expect(stack.resolve({ a: { 'Fn::If': ['IsDev', 'yes', 'no'] }, b: { 'Fn::If': ['IsProd', 'x', { Ref: 'AWS::NoValue' }] } })).toEqual({ a: 'yes' });
  });

  it('returns late attributes (the real StreamArn) once recorded', () => {
    const stack = fixture();
    stack.setAttribute('MainTable74195DAB', 'StreamArn', 'arn:aws:dynamodb:ddblocal:000000000000:table/x/stream/2026-01-01T00:00:00.000');
    expect(stack.resolve({ 'Fn::GetAtt': ['MainTable74195DAB', 'StreamArn'] })).toContain('/stream/2026-01-01');
  });

  it('fails with a message naming the place and the reference', () => {
    const stack = fixture();
    expect(() => stack.resolve({ Ref: 'Nope' }, 'Fn.Environment.Variables.X')).toThrow(TemplateError);
    expect(() => stack.resolve({ Ref: 'Nope' }, 'Fn.Environment.Variables.X')).toThrow(/Fn\.Environment\.Variables\.X: Ref to 'Nope'/);
    expect(() => stack.resolve({ 'Fn::ImportValue': 'x' }, 'Here')).toThrow(/Here \(Fn::ImportValue\): Fn::ImportValue is not supported/);
    expect(() => stack.resolve({ 'Fn::GetAtt': ['MainTable74195DAB', 'Bogus'] }, 'There')).toThrow(/There .*MainTable74195DAB\.Bogus/);
  });

  it('resolves parameters through their Default (CDK BootstrapVersion)', () => {
    expect(fixture().resolve({ Ref: 'BootstrapVersion' })).toBe('/cdk-bootstrap/hnb659fds/version');
  });
});
