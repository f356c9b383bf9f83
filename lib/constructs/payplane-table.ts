import {
  Billing,
  type GlobalSecondaryIndexPropsV2,
  StreamViewType,
  TableEncryptionV2,
  TableV2,
  type Attribute,
} from 'aws-cdk-lib/aws-dynamodb';
import { Stack } from 'aws-cdk-lib';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { Construct } from 'constructs';
import { STAGE_SETTINGS, type RestoredTable, type Stage } from '../stage-config';
import { withVariable } from './payplane-function';

export interface PayplaneTableProps {
  /** The stage; decides removal policy and deletion protection (see `STAGE_SETTINGS`). */
  readonly stage: Stage;
  /** Partition key. */
  readonly partitionKey: Attribute;
  /**
   * Sort key.
   * @default - no sort key
   */
  readonly sortKey?: Attribute;
  /** Customer-managed KMS key that encrypts the table at rest. */
  readonly encryptionKey: IKey;
  /**
   * Name of the attribute DynamoDB TTL deletes on (epoch seconds).
   * @default - no TTL
   */
  readonly timeToLiveAttribute?: string;
  /**
   * Stream view type.
   * @default - no stream
   */
  readonly dynamoStream?: StreamViewType;
  /**
   * Global secondary indexes.
   * @default - none
   */
  readonly globalSecondaryIndexes?: GlobalSecondaryIndexPropsV2[];
  /**
   * The environment variable that carries the table's name to the functions that bind it
   * (`PayplaneFunction.bindTable` sets it), e.g. `TABLE_NAME`.
   * @default - none: functions get the name only through their `environment`
   */
  readonly variable?: string;
  /**
   * A restored table this construct adopts in place of the one it would create (stage setting `restoredTables`,
   * docs/operations.md § Adopting a restored table).
   * @default - the construct's own table
   */
  readonly restored?: RestoredTable;
}

/**
 * A DynamoDB table (`AWS::DynamoDB::GlobalTable`, single region) with the settings every Payplane table
 * shares, fixed once: on-demand billing, point-in-time recovery, encryption with our customer-managed key,
 * and the stage's removal policy and deletion protection.
 *
 * It also remembers its index names so that `PayplaneFunction.bindTable` can grant Query on the index ARNs a
 * function names (never `<table>/index/*`) and refuse a name the table does not have.
 */
export class PayplaneTable extends TableV2 {
  /** The customer-managed key the table is encrypted with. */
  readonly tableKey: IKey;
  private readonly _indexNames: string[] = [];
  /** While a restored table is being adopted: its name, ARN and stream ARN as literals, never references. */
  private readonly literal?: { readonly name: string; readonly arn: string; readonly streamArn?: string };

  constructor(scope: Construct, id: string, props: PayplaneTableProps) {
    const settings = STAGE_SETTINGS[props.stage];
    const restored = props.restored;
    super(scope, id, {
      // The restored table's name, for good: changing TableName later would replace the table.
      tableName: restored?.tableName,
      partitionKey: props.partitionKey,
      sortKey: props.sortKey,
      timeToLiveAttribute: props.timeToLiveAttribute,
      dynamoStream: props.dynamoStream,
      billing: Billing.onDemand(),
      encryption: TableEncryptionV2.customerManagedKey(props.encryptionKey),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: settings.deletionProtection,
      removalPolicy: settings.removalPolicy,
    });
    this.tableKey = props.encryptionKey;
    if (props.variable) withVariable(this, props.variable);
    for (const index of props.globalSecondaryIndexes ?? []) this.addGlobalSecondaryIndex(index);
    if (restored?.step) {
      if (props.dynamoStream && !restored.streamArn) {
        throw new Error(
          `${this.node.path}: restoredTables names '${restored.tableName}' at step '${restored.step}' without its streamArn. ` +
            `This table has a stream, which the publisher reads: enable it on the restored table and set streamArn to ` +
            `\`aws dynamodb describe-table --table-name ${restored.tableName} --query Table.LatestStreamArn\`.`,
        );
      }
      // An import may only add resources, so until the table is imported nothing may refer to the resource:
      // everything that uses the table names the restored one literally (the same values the references resolve to).
      this.literal = {
        name: restored.tableName,
        arn: Stack.of(this).formatArn({ service: 'dynamodb', resource: 'table', resourceName: restored.tableName }),
        streamArn: props.dynamoStream ? restored.streamArn : undefined,
      };
      // detach: out of the template (the deployed one's DeletionPolicy decides whether the old table is kept).
      if (restored.step === 'detach') this.node.tryRemoveChild('Resource');
    }
  }

  override get tableName(): string {
    return this.literal?.name ?? super.tableName;
  }

  override get tableArn(): string {
    return this.literal?.arn ?? super.tableArn;
  }

  override get tableStreamArn(): string | undefined {
    return this.literal ? this.literal.streamArn : super.tableStreamArn;
  }

  /** Names of the table's global secondary indexes. */
  get indexNames(): readonly string[] {
    return this._indexNames;
  }

  override addGlobalSecondaryIndex(props: GlobalSecondaryIndexPropsV2): void {
    super.addGlobalSecondaryIndex(props);
    this._indexNames.push(props.indexName);
  }
}
