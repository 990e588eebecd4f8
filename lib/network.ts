import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

export interface NetworkProps {
  /** Add a Bedrock runtime endpoint, for the Bedrock summarizer. @default false */
  readonly bedrockEndpoint?: boolean;
}

/**
 * A VPC with isolated subnets only in two AZs: no NAT gateway, no internet
 * route. The Lambdas reach AWS APIs through interface endpoints for exactly what
 * they call (CloudWatch gets its metrics from the logs, so it needs none).
 * Security groups open one path to the data: Lambda -> proxy -> database, on 5432.
 */
export class Network extends Construct {
  readonly vpc: ec2.Vpc;
  readonly lambdaSecurityGroup: ec2.SecurityGroup;
  readonly proxySecurityGroup: ec2.SecurityGroup;
  readonly databaseSecurityGroup: ec2.SecurityGroup;
  readonly endpointSecurityGroup: ec2.SecurityGroup;
  readonly secretsManagerEndpoint: ec2.InterfaceVpcEndpoint;
  readonly lambdaEndpoint: ec2.InterfaceVpcEndpoint;
  readonly bedrockRuntimeEndpoint?: ec2.InterfaceVpcEndpoint;

  constructor(scope: Construct, id: string, props: NetworkProps = {}) {
    super(scope, id);
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
      // Rejected packets only: the one question flow logs answer here is "which security group said no".
      flowLogs: {
        rejected: {
          destination: ec2.FlowLogDestination.toCloudWatchLogs(
            new logs.LogGroup(this, 'RejectedFlowLogs', { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY }),
          ),
          trafficType: ec2.FlowLogTrafficType.REJECT,
        },
      },
    });

    const securityGroup = (name: string, description: string) =>
      new ec2.SecurityGroup(this, name, { vpc: this.vpc, description, allowAllOutbound: false });
    this.lambdaSecurityGroup = securityGroup('LambdaSecurityGroup', 'summary-jobs Lambdas');
    this.proxySecurityGroup = securityGroup('ProxySecurityGroup', 'RDS Proxy in front of the summary-jobs database');
    this.databaseSecurityGroup = securityGroup('DatabaseSecurityGroup', 'summary-jobs database');
    this.endpointSecurityGroup = securityGroup('EndpointSecurityGroup', 'VPC interface endpoints for AWS APIs');

    this.proxySecurityGroup.addIngressRule(this.lambdaSecurityGroup, ec2.Port.tcp(5432), 'Lambdas to proxy');
    this.lambdaSecurityGroup.addEgressRule(this.proxySecurityGroup, ec2.Port.tcp(5432), 'Lambdas to proxy');
    // Proxy -> database (and rotation -> database) are opened by the Database
    // construct's addProxy and addRotationSingleUser; a second identical rule
    // here would fail the deployment as a duplicate.
    this.allowEndpointsFrom(this.lambdaSecurityGroup);

    const endpoint = (name: string, service: ec2.InterfaceVpcEndpointAwsService) =>
      this.vpc.addInterfaceEndpoint(name, {
        service,
        securityGroups: [this.endpointSecurityGroup],
        privateDnsEnabled: true,
        // Only the security groups given access below, not the whole VPC CIDR.
        open: false,
      });
    // Database credentials and the admin key; also the rotation function.
    this.secretsManagerEndpoint = endpoint('SecretsManagerEndpoint', ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER);
    // The API Lambda nudges the processor with an async invoke after an upload.
    this.lambdaEndpoint = endpoint('LambdaEndpoint', ec2.InterfaceVpcEndpointAwsService.LAMBDA);
    if (props.bedrockEndpoint) {
      this.bedrockRuntimeEndpoint = endpoint('BedrockRuntimeEndpoint', ec2.InterfaceVpcEndpointAwsService.BEDROCK_RUNTIME);
    }
  }

  /** Lets a security group call the AWS APIs behind the interface endpoints (HTTPS). */
  allowEndpointsFrom(other: ec2.SecurityGroup): void {
    this.endpointSecurityGroup.addIngressRule(other, ec2.Port.tcp(443), 'to AWS APIs');
    other.addEgressRule(this.endpointSecurityGroup, ec2.Port.tcp(443), 'to AWS APIs');
  }
}
