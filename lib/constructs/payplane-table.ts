import {
  Billing,
  type GlobalSecondaryIndexPropsV2,
  StreamViewType,
  TableEncryptionV2,
  TableV2,
  type Attribute,
} from 'aws-cdk-lib/aws-dynamodb';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { Construct } from 'constructs';
import { STAGE_SETTINGS, type Stage } from '../stage-config';
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

  constructor(scope: Construct, id: string, props: PayplaneTableProps) {
    const settings = STAGE_SETTINGS[props.stage];
    super(scope, id, {
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
