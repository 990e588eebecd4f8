import { Logger } from '@aws-lambda-powertools/logger';
import { SERVICE_NAME } from './alarm-rules';

/** The one logger. Level from POWERTOOLS_LOG_LEVEL; never log document text, keys or secrets. */
export const logger = new Logger({ serviceName: SERVICE_NAME });
export type { Logger };
