import { Duration, Names, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { LOG_RETENTION, retainServiceLogs } from './log-retention';
import type { Network } from './network';

export interface DatabaseProps {
  readonly network: Network;
  /** @default db.t4g.micro */
  readonly instanceType?: ec2.InstanceType;
  /** Initial storage; autoscaling may grow it to five times this (at least 100 GiB). @default 20 GiB */
  readonly allocatedStorageGiB?: number;
  /** A standby in a second AZ. @default false: one instance; set true where an AZ outage must not stop the service */
  readonly multiAz?: boolean;
  /** @default true: the instance cannot be deleted until a deploy turns this off */
  readonly deletionProtection?: boolean;
  /** Take a final snapshot when the instance is removed from the stack. @default true */
  readonly keepFinalSnapshot?: boolean;
  /** @default 7 days */
  readonly backupRetention?: Duration;
  /** A PostgreSQL 16 minor version. @default 16.13 */
  readonly postgresVersion?: string;
  /** @default 30 days */
  readonly rotateCredentialsAfter?: Duration;
}

const DEFAULT_ENGINE_VERSION = rds.PostgresEngineVersion.VER_16_13;

/**
 * RDS Postgres 16, encrypted and private, with generated credentials in Secrets
 * Manager (rotated) and RDS Proxy in front, TLS required. Lambdas only ever see
 * the proxy endpoint and the secret's ARN.
 */
export class Database extends Construct {
  readonly instance: rds.DatabaseInstance;
  readonly proxy: rds.DatabaseProxy;
  /** Username and password (JSON), rotated in place; the proxy and the Lambdas read it. */
  readonly secret: secretsmanager.ISecret;
  readonly databaseName = 'summary_jobs';

  constructor(scope: Construct, id: string, props: DatabaseProps) {
    super(scope, id);
    const { network } = props;
    const version = props.postgresVersion
      ? rds.PostgresEngineVersion.of(props.postgresVersion, '16')
      : DEFAULT_ENGINE_VERSION;
    const engine = rds.DatabaseInstanceEngine.postgres({ version });
    const parameterGroup = new rds.ParameterGroup(this, 'Parameters', {
      engine,
      parameters: {
        // Refuse unencrypted connections, from the proxy and the rotation function alike.
        'rds.force_ssl': '1',
        // Slow statements reach the postgresql log, so a regressed claim query shows up.
        log_min_duration_statement: '1000',
      },
    });

    const storage = props.allocatedStorageGiB ?? 20;
    const deletionProtection = props.deletionProtection ?? true;
    this.instance = new rds.DatabaseInstance(this, 'Instance', {
      engine,
      parameterGroup,
      instanceType: props.instanceType ?? ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MICRO),
      vpc: network.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      securityGroups: [network.databaseSecurityGroup],
      port: 5432,
      publiclyAccessible: false,
      databaseName: this.databaseName,
      credentials: rds.Credentials.fromGeneratedSecret('summary_jobs_admin'),
      storageEncrypted: true,
      storageType: rds.StorageType.GP3,
      allocatedStorage: storage,
      maxAllocatedStorage: Math.max(100, storage * 5),
      multiAz: props.multiAz ?? false,
      backupRetention: props.backupRetention ?? Duration.days(7),
      deletionProtection,
      removalPolicy: (props.keepFinalSnapshot ?? true) ? RemovalPolicy.SNAPSHOT : RemovalPolicy.DESTROY,
      cloudwatchLogsExports: ['postgresql'],
      // RDS creates the group on its first export; retention is set through LogRetention.
      cloudwatchLogsRetention: LOG_RETENTION,
      autoMinorVersionUpgrade: true,
      iamAuthentication: true,
    });
    this.secret = this.instance.secret!;
    // The password that opens the final snapshot stays as long as the snapshot.
    // (`secret` is its attachment to the instance; the generated secret is the instance's child.)
    if (props.keepFinalSnapshot ?? true) (this.instance.node.findChild('Secret') as secretsmanager.Secret).applyRemovalPolicy(RemovalPolicy.RETAIN);

    // The rotation function talks to the database directly (not through the
    // proxy; addRotationSingleUser opens that port) and to Secrets Manager
    // through its endpoint; nothing else.
    const rotationSecurityGroup = new ec2.SecurityGroup(this, 'RotationSecurityGroup', {
      vpc: network.vpc,
      description: 'summary-jobs credential rotation',
      allowAllOutbound: false,
    });
    network.allowEndpointsFrom(rotationSecurityGroup);
    const rotation = this.instance.addRotationSingleUser({
      automaticallyAfter: props.rotateCredentialsAfter ?? Duration.days(30),
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      securityGroup: rotationSecurityGroup,
      endpoint: network.secretsManagerEndpoint,
    });
    // The rotation function comes from the Serverless Application Repository, named
    // as SecretRotation names it (the last 64 characters of its unique id); Lambda creates its group.
    const rotationFunctionName = Names.uniqueId(rotation).slice(-64);
    retainServiceLogs(this, 'RotationLogsRetention', `/aws/lambda/${rotationFunctionName}`);

    // Also opens the database's port to the proxy's security group.
    this.proxy = this.instance.addProxy('Proxy', {
      // Proxy names are unique per account and region (CDK's default is the
      // construct id, "Proxy"): a second stage beside this one would collide.
      // Changing a proxy's name replaces it, so this is set before the first deploy.
      dbProxyName: proxyName(Stack.of(this).stackName),
      secrets: [this.secret],
      vpc: network.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      securityGroups: [network.proxySecurityGroup],
      requireTLS: true,
      // Lambda containers freeze and vanish without closing their sockets.
      idleClientTimeout: Duration.minutes(5),
      maxConnectionsPercent: 90,
      debugLogging: false,
    });
  }

  /** Lets a function read the database credentials (and nothing else in Secrets Manager). */
  grantConnect(grantee: iam.IGrantable): void {
    this.secret.grantRead(grantee);
  }
}

/** `<stack name>-proxy`, within RDS's rules: letters, digits and single hyphens, at most 60 characters. */
export function proxyName(stackName: string): string {
  const base = stackName.replace(/[^A-Za-z0-9]+/g, '-').replace(/^[^A-Za-z]+/, '').slice(0, 54).replace(/-+$/, '');
  return `${base || 'summary-jobs'}-proxy`;
}
