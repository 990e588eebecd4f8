import { CfnElement, Validations } from 'aws-cdk-lib';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type { Construct } from 'constructs';
import type { SummaryJobsStack } from './summary-jobs-stack';

/**
 * The cdk-nag AwsSolutions findings this design accepts, each on the narrowest
 * construct it concerns, with its reason. Everything else must pass: synth
 * fails on any error that is not acknowledged here.
 */

function acknowledge(scope: Construct, rule: string, reason: string): void {
  Validations.of(scope).acknowledge({ id: `AwsSolutions::AwsSolutions-${rule}`, reason });
}

function child(scope: Construct, path: string): Construct {
  const found = path.split('/').reduce<Construct | undefined>((c, id) => c?.node.tryFindChild(id) as Construct | undefined, scope);
  if (!found) throw new Error(`cdk-nag acknowledgement target ${path} does not exist`);
  return found;
}

const LAMBDA_BASIC_EXECUTION = 'Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole';
const LAMBDA_VPC_ACCESS = 'Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole';
const API_GATEWAY_LOGS = 'Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs';

export function acknowledgeFindings(stack: SummaryJobsStack): void {
  for (const fn of ['Api/UploadFunction/Function', 'Processor/ProcessorFunction/Function', 'Migrations/MigrateFunction/Function']) {
    const scope = child(stack, fn);
    acknowledge(scope, `IAM4[${LAMBDA_BASIC_EXECUTION}]`,
      'AWS-maintained policy limited to writing the function\'s own logs; the log group itself is created by the stack with a retention period.');
    acknowledge(scope, `IAM4[${LAMBDA_VPC_ACCESS}]`,
      'AWS-maintained policy that lets Lambda create and delete the network interfaces it needs in the isolated subnets; these EC2 actions do not support resource-level permissions.');
    acknowledge(scope, 'IAM5[Resource::*]',
      'Only xray:PutTraceSegments and xray:PutTelemetryRecords (active tracing), which do not support resource-level permissions.');
  }

  // The finding names the processor by its logical id.
  const processor = logicalIdOf(stack, 'Processor/ProcessorFunction/Function/Resource');
  acknowledge(child(stack, 'Api/UploadFunction'), `IAM5[Resource::<${processor}.Arn>:*]`,
    'lambda:InvokeFunction on the processor function and its versions and aliases only (the nudge after an upload); no other function.');
  acknowledge(child(stack, 'Processor/FailedInvocations'), 'SQS3',
    'This queue is itself the dead-letter queue for failed or expired processor invocations.');

  // CDK's LogRetention function (one per stack) sets retention on the log groups AWS creates on first write.
  const logRetention = stack.node.tryFindChild('LogRetentionaae0aa3c5b4d4f87b02d85b201efdd8a');
  if (logRetention) {
    acknowledge(logRetention, `IAM4[${LAMBDA_BASIC_EXECUTION}]`,
      'CDK\'s log-retention function writes only its own logs with this AWS-maintained policy; it runs during deployments only.');
    acknowledge(logRetention, 'IAM5[Resource::*]',
      'logs:PutRetentionPolicy, DeleteRetentionPolicy and CreateLogGroup on log groups whose names are only known once AWS creates them (rotation and provider functions, API Gateway execution logs, RDS exports).');
  }

  const api = child(stack, 'Api/RestApi');
  acknowledge(api, `IAM4[${API_GATEWAY_LOGS}]`,
    'The account-level role API Gateway needs to write execution and access logs; AWS-maintained and limited to CloudWatch Logs.');
  acknowledge(api, 'APIG4',
    'Every client and admin route is authenticated in the Lambda (per-client API keys checked against hashes in the database, the admin credential from Secrets Manager), and API Gateway rejects requests without the x-api-key header; /health and the dashboard page carry no data.');
  acknowledge(api, 'COG4',
    'Clients are programs holding API keys, not Cognito users; the keys are checked in the Lambda against hashes in the database.');
  acknowledge(child(stack, 'Api/AdminApiKey'), 'SMG4',
    'An operator credential held by people, not a database password: rotate it by hand with put-secret-value; the API Lambda re-reads it within 5 minutes.');
  acknowledge(api, 'APIG3',
    'No WAF web ACL by default (about $5/month plus request fees); stage throttling applies. Associate a web ACL per environment when needed.');

  const database = child(stack, 'Database/Instance');
  const instance = child(database, 'Resource') as rds.CfnDBInstance;
  const multiAz = stack.resolve(instance.multiAz) === true;
  acknowledge(database, 'RDS11',
    'The database accepts connections only from the RDS Proxy and rotation security groups inside isolated subnets; a non-default port adds no protection there.');
  if (!multiAz) {
    acknowledge(database, 'RDS3',
      'Single-AZ keeps the idle cost low; deploy with -c multiAz=true for a standby in a second AZ. Backups and deletion protection stay on.');
  }
  const deletionProtection = stack.resolve(instance.deletionProtection) === true;
  if (!deletionProtection) {
    acknowledge(database, 'RDS10',
      'Deletion protection was turned off on purpose (-c deletionProtection=false): a throwaway stage, or the deploy right before cdk destroy. It is on by default.');
  }
}

function logicalIdOf(stack: SummaryJobsStack, path: string): string {
  const element = child(stack, path);
  if (!(element instanceof CfnElement)) throw new Error(`${path} is not a CloudFormation resource`);
  return stack.resolve(element.logicalId) as string;
}
