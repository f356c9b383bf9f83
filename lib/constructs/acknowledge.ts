import { Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * Acknowledges one cdk-nag finding on a construct and everything below it. `id` is the rule id, or
 * `Rule[Finding]` for granular rules (`AwsSolutions-IAM5[Resource::*]`). The reason travels into the
 * validation report and the template metadata (`cdk_nag.rules_to_suppress`): make it specific.
 */
export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}
