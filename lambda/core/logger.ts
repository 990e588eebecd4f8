import { Logger } from '@aws-lambda-powertools/logger';

/** The one logger. Level from POWERTOOLS_LOG_LEVEL; never log document text, keys or secrets. */
export const SERVICE_NAME = 'summary-jobs';
export const logger = new Logger({ serviceName: SERVICE_NAME });
export type { Logger };
