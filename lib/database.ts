import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as rds from 'aws-cdk-lib/aws-rds';
import { Construct } from 'constructs';
import type { Network } from './network';

export interface DatabaseProps {
  readonly network: Network;
  /** @default db.t4g.micro */
  readonly instanceType?: ec2.InstanceType;
  /** @default 20 GiB, growing to 100 */
  readonly allocatedStorageGiB?: number;
  /** A standby in a second AZ. @default false (one instance; set true for production SLAs) */
  readonly multiAz?: boolean;
  /** @default true */
  readonly deletionProtection?: boolean;
  /** @default 7 days */
  readonly backupRetention?: Duration;
}

export const DATABASE_NAME = 'summary_jobs';

/**
 * RDS Postgres 16, encrypted and private, with generated credentials in Secrets
 * Manager (rotated monthly) and RDS Proxy in front, TLS required. Lambdas only
 * ever see the proxy endpoint and the secret's ARN.
 */
export class Database extends Construct {
  readonly instance: rds.DatabaseInstance;
  readonly proxy: rds.DatabaseProxy;

  constructor(scope: Construct, id: string, props: DatabaseProps) {
    super(scope, id);
    const { network } = props;
    const engine = rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_16_9 });
    const parameterGroup = new rds.ParameterGroup(this, 'Parameters', {
      engine,
      parameters: {
        // Refuse unencrypted connections even from inside the VPC.
        'rds.force_ssl': '1',
        // Log slow statements so a regressed claim query shows up.
        log_min_duration_statement: '1000',
      },
    });

    this.instance = new rds.DatabaseInstance(this, 'Instance', {
      engine,
      parameterGroup,
      instanceType: props.instanceType ?? ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MICRO),
      vpc: network.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      securityGroups: [network.databaseSecurityGroup],
      publiclyAccessible: false,
      databaseName: DATABASE_NAME,
      credentials: rds.Credentials.fromGeneratedSecret('summary_jobs_admin'),
      storageEncrypted: true,
      allocatedStorage: props.allocatedStorageGiB ?? 20,
      maxAllocatedStorage: Math.max(100, props.allocatedStorageGiB ?? 20),
      storageType: rds.StorageType.GP3,
      multiAz: props.multiAz ?? false,
      backupRetention: props.backupRetention ?? Duration.days(7),
      deletionProtection: props.deletionProtection ?? true,
      removalPolicy: (props.deletionProtection ?? true) ? RemovalPolicy.SNAPSHOT : RemovalPolicy.DESTROY,
      cloudwatchLogsExports: ['postgresql'],
      autoMinorVersionUpgrade: true,
      iamAuthentication: true,
    });

    // The rotation function talks to the database directly and to Secrets Manager.
    const rotationSecurityGroup = new ec2.SecurityGroup(this, 'RotationSecurityGroup', {
      vpc: network.vpc,
      description: 'summary-jobs credential rotation',
      allowAllOutbound: false,
    });
    network.allowEndpointsFrom(rotationSecurityGroup);
    network.databaseSecurityGroup.addIngressRule(rotationSecurityGroup, ec2.Port.tcp(5432), 'rotation to database');
    rotationSecurityGroup.addEgressRule(network.databaseSecurityGroup, ec2.Port.tcp(5432), 'rotation to database');
    this.instance.addRotationSingleUser({
      automaticallyAfter: Duration.days(30),
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      securityGroup: rotationSecurityGroup,
      endpoint: network.secretsManagerEndpoint,
    });

    this.proxy = this.instance.addProxy('Proxy', {
      secrets: [this.instance.secret!],
      vpc: network.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      securityGroups: [network.proxySecurityGroup],
      requireTLS: true,
      // Lambdas come and go; give back idle client connections quickly.
      idleClientTimeout: Duration.minutes(5),
      maxConnectionsPercent: 90,
      debugLogging: false,
    });
  }

  /** Lets a function read the database credentials (and nothing else in Secrets Manager). */
  grantConnect(grantee: iam.IGrantable): void {
    this.instance.secret!.grantRead(grantee);
  }
}
