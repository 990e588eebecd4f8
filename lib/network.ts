import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { RemovalPolicy } from 'aws-cdk-lib';
import { Construct } from 'constructs';

export interface NetworkProps {
  /** Add a Bedrock runtime endpoint (only when the Bedrock summarizer is configured). @default false */
  readonly bedrockEndpoint?: boolean;
}

/**
 * A VPC with isolated subnets only: no NAT gateway, no internet route. The
 * Lambdas reach AWS APIs through interface endpoints for exactly what they call.
 * Security groups open one path: Lambda -> proxy -> database, on the Postgres port.
 */
export class Network extends Construct {
  readonly vpc: ec2.Vpc;
  readonly lambdaSecurityGroup: ec2.SecurityGroup;
  readonly proxySecurityGroup: ec2.SecurityGroup;
  readonly databaseSecurityGroup: ec2.SecurityGroup;
  readonly endpointSecurityGroup: ec2.SecurityGroup;
  readonly secretsManagerEndpoint: ec2.InterfaceVpcEndpoint;

  constructor(scope: Construct, id: string, props: NetworkProps = {}) {
    super(scope, id);
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
      flowLogs: {
        rejected: {
          destination: ec2.FlowLogDestination.toCloudWatchLogs(
            new logs.LogGroup(this, 'FlowLogs', { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY }),
          ),
          trafficType: ec2.FlowLogTrafficType.REJECT,
        },
      },
    });

    const sg = (name: string, description: string) =>
      new ec2.SecurityGroup(this, name, { vpc: this.vpc, description, allowAllOutbound: false });
    this.lambdaSecurityGroup = sg('LambdaSecurityGroup', 'summary-jobs Lambdas');
    this.proxySecurityGroup = sg('ProxySecurityGroup', 'RDS Proxy in front of the summary-jobs database');
    this.databaseSecurityGroup = sg('DatabaseSecurityGroup', 'summary-jobs database');

    this.proxySecurityGroup.addIngressRule(this.lambdaSecurityGroup, ec2.Port.tcp(5432), 'Lambdas to proxy');
    this.lambdaSecurityGroup.addEgressRule(this.proxySecurityGroup, ec2.Port.tcp(5432), 'Lambdas to proxy');
    this.databaseSecurityGroup.addIngressRule(this.proxySecurityGroup, ec2.Port.tcp(5432), 'proxy to database');
    this.proxySecurityGroup.addEgressRule(this.databaseSecurityGroup, ec2.Port.tcp(5432), 'proxy to database');

    const endpointSecurityGroup = sg('EndpointSecurityGroup', 'VPC interface endpoints');
    this.endpointSecurityGroup = endpointSecurityGroup;
    this.allowEndpointsFrom(this.lambdaSecurityGroup);

    const endpoint = (name: string, service: ec2.InterfaceVpcEndpointAwsService) =>
      this.vpc.addInterfaceEndpoint(name, { service, securityGroups: [endpointSecurityGroup], privateDnsEnabled: true, open: false });
    this.secretsManagerEndpoint = endpoint('SecretsManagerEndpoint', ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER);
    // The upload Lambda nudges the processor with an async invoke.
    endpoint('LambdaEndpoint', ec2.InterfaceVpcEndpointAwsService.LAMBDA);
    if (props.bedrockEndpoint) endpoint('BedrockRuntimeEndpoint', ec2.InterfaceVpcEndpointAwsService.BEDROCK_RUNTIME);
  }

  /** Lets another security group call the AWS API endpoints (HTTPS). */
  allowEndpointsFrom(other: ec2.SecurityGroup): void {
    this.endpointSecurityGroup.addIngressRule(other, ec2.Port.tcp(443), 'to AWS APIs');
    other.addEgressRule(this.endpointSecurityGroup, ec2.Port.tcp(443), 'to AWS APIs');
  }
}
