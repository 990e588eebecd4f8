import { CfnResource, Duration, Stack } from 'aws-cdk-lib';
import * as triggers from 'aws-cdk-lib/triggers';
import { Construct } from 'constructs';
import { join } from 'node:path';
import type { Database } from './database';
import { REPO_ROOT, ServiceFunction } from './lambda-function';
import { retainServiceLogs } from './log-retention';
import type { Network } from './network';

export interface MigrationsProps {
  readonly network: Network;
  readonly database: Database;
}

/** Where the SQL files sit inside the migration function's bundle. */
export const BUNDLED_MIGRATIONS_DIR = '/var/task/migrations';

// Room for the retries while a new proxy target comes up, well inside the
// trigger provider's own 15 minutes.
const MIGRATION_TIMEOUT = Duration.minutes(10);

/**
 * Runs the same migration runner as `npm run migrate`, once the database and
 * proxy are up. The SQL files are copied into the bundle, so a changed or new
 * migration changes the function's code and the trigger runs again on the next
 * deploy. A failed migration fails the deployment, which CloudFormation rolls back.
 */
export class Migrations extends Construct {
  readonly function: ServiceFunction;
  readonly trigger: triggers.Trigger;

  constructor(scope: Construct, id: string, props: MigrationsProps) {
    super(scope, id);
    this.function = new ServiceFunction(this, 'MigrateFunction', {
      network: props.network,
      database: props.database,
      handlerFile: 'migrate.ts',
      description: 'Applies summary-jobs SQL migrations at deploy time',
      timeout: MIGRATION_TIMEOUT,
      // The runner's default (two levels above lambda/core) does not exist in a flat bundle.
      environment: { MIGRATIONS_DIR: BUNDLED_MIGRATIONS_DIR },
      bundling: {
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (_inputDir: string, outputDir: string) => [`cp -r "${join(REPO_ROOT, 'migrations')}" "${outputDir}/migrations"`],
        },
      },
    });
    this.trigger = new triggers.Trigger(this, 'RunOnDeploy', {
      handler: this.function.fn,
      executeAfter: [props.database.instance, props.database.proxy],
      executeOnHandlerChange: true,
      timeout: MIGRATION_TIMEOUT,
    });
    // The trigger's provider is a function of CDK's own (one per stack) whose log group Lambda creates.
    const provider = Stack.of(this)
      .node.findAll()
      .find((c) => c instanceof CfnResource && c.cfnResourceType === 'AWS::Lambda::Function' && c.node.path.includes('AWSCDK.TriggerCustomResourceProvider')) as CfnResource | undefined;
    if (provider) {
      retainServiceLogs(this, 'TriggerProviderLogsRetention', `/aws/lambda/${provider.ref}`);
    }
  }
}
