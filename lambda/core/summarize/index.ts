import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import type { ProcessorConfig } from '../config';
import { bedrockSummarizer } from './bedrock-summarizer';
import { extractiveSummarizer } from './extractive-summarizer';
import type { Summarizer } from './types';

export type { DocumentInput, Summarizer, SummaryOptions, SummaryResult, TextStats } from './types';
export { extractText, MAX_TEXT_CHARACTERS } from './extract-text';
export { MAX_MODEL_INPUT_CHARACTERS } from './bedrock-summarizer';

/**
 * The summarizer the configuration names. `deps.bedrock` replaces the Bedrock
 * client (tests); otherwise one is created, with the Lambda's region and
 * credentials, when the first job needs it.
 */
export function createSummarizer(
  config: Pick<ProcessorConfig, 'summarizer' | 'bedrockModelId'>,
  deps: { bedrock?: BedrockRuntimeClient } = {},
): Summarizer {
  if (config.summarizer === 'extractive') return extractiveSummarizer();
  let client = deps.bedrock;
  return bedrockSummarizer(() => (client ??= new BedrockRuntimeClient({})), config.bedrockModelId);
}
