import { Duration } from 'aws-cdk-lib';
import * as triggers from 'aws-cdk-lib/triggers';
import { Construct } from 'constructs';
import { join } from 'node:path';
import type { Database } from './database';
import { REPO_ROOT, ServiceFunction } from './lambda-function';
import type { Network } from './network';

export interface MigrationsProps {
  readonly network: Network;
  readonly database: Database;
}

/**
 * Runs the same migration runner as `npm run migrate`, once the database and
 * proxy are up. The SQL files are copied into the bundle, so any change to a
 * migration changes the asset and the trigger runs again on the next deploy.
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
      timeout: Duration.minutes(5),
      environment: { MIGRATIONS_DIR: '/var/task/migrations' },
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
      timeout: Duration.minutes(5),
    });
  }
}
