import { Validations, type Stack } from 'aws-cdk-lib';
import type { Construct } from 'constructs';

/**
 * The cdk-nag AwsSolutions findings this design accepts, each on the narrowest
 * construct it concerns and with its reason. Everything else must pass.
 */

const ack = (scope: Construct, id: string, reason: string) => Validations.of(scope).acknowledge({ id: `AwsSolutions::AwsSolutions-${id}`, reason });

function child(scope: Construct, path: string): Construct {
  const found = path.split('/').reduce<Construct | undefined>((c, id) => c?.node.tryFindChild(id) as Construct | undefined, scope);
  if (!found) throw new Error(`cdk-nag acknowledgement target ${path} does not exist`);
  return found;
}

export function acknowledgeFindings(stack: Stack, opts: { multiAz?: boolean } = {}): void {
  const api = child(stack, 'Api');
  const database = child(stack, 'Database/Instance');

  for (const fn of ['Api/UploadFunction', 'Processor/ProcessorFunction', 'Migrations/MigrateFunction']) {
    const role = child(stack, `${fn}/Function`);
    ack(role, 'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      'AWS-maintained minimal policy for writing the function\'s own logs; the log group itself is created by the stack with retention.');
    ack(role, 'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
      'AWS-maintained policy that lets Lambda manage the ENIs it needs in the isolated subnets; ENI actions cannot be scoped to resources.');
    ack(role, 'IAM5[Resource::*]', 'Only the X-Ray PutTraceSegments/PutTelemetryRecords actions, which do not support resource-level permissions.');
  }
  ack(child(stack, 'Api/UploadFunction'), 'IAM5[Resource::<ProcessorProcessorFunctionC4112D24.Arn>:*]',
    'grantInvoke on the processor function and its versions/aliases only (the nudge after an upload); no other function.');
  ack(child(stack, 'Processor/FailedInvocations'), 'SQS3', 'This queue is the dead-letter queue for failed processor invocations.');
  ack(api, 'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
    'The account-level role API Gateway needs to write execution and access logs; AWS-maintained and logs-only.');
  ack(api, 'APIG4', 'Every client and admin route is authenticated by the Lambda against hashed per-client API keys (and the admin credential in Secrets Manager), with API Gateway requiring the x-api-key header; /health and the dashboard page carry no data.');
  ack(api, 'COG4', 'Clients are machines holding API keys, not Cognito users; keys are checked in the Lambda against hashes in the database.');
  ack(api, 'APIG3', 'No WAF by default (about $5/month plus per-request fees); API Gateway stage throttling applies. Attach a web ACL per environment when needed.');
  ack(database, 'RDS11', 'The database is reachable only from the RDS Proxy security group inside isolated subnets; a non-default port adds no protection there.');
  if (!opts.multiAz) {
    ack(database, 'RDS3', 'Single-AZ keeps the idle cost low; deploy with -c multiAz=true for a standby in a second AZ. Backups and deletion protection stay on.');
  }
}
