import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AccessDeniedException,
  BedrockRuntimeClient,
  ConverseCommand,
  ResourceNotFoundException,
  ServiceUnavailableException,
  ThrottlingException,
  ValidationException,
  type ConverseCommandOutput,
} from '@aws-sdk/client-bedrock-runtime';
import { mockClient } from 'aws-sdk-client-mock';
import { JobError } from '../../lambda/core/errors';
import { createSummarizer, MAX_MODEL_INPUT_CHARACTERS, type DocumentInput } from '../../lambda/core/summarize';
import { THROTTLE_SNOOZE_SECONDS } from '../../lambda/core/summarize/bedrock-summarizer';

const MODEL_ID = 'anthropic.claude-3-haiku-20240307-v1:0';
const DOCS = join(__dirname, '..', 'fixtures', 'docs');
const news: DocumentInput = { content: readFileSync(join(DOCS, 'news-article.txt')), contentType: 'text/plain', filename: 'news-article.txt' };
const LEAD = 'The Riverton city council voted 7 to 2 on Tuesday night to replace the 94-year-old Harbor Bridge';

const bedrock = mockClient(BedrockRuntimeClient);
const client = new BedrockRuntimeClient({ region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
const summarizer = createSummarizer({ summarizer: 'bedrock', bedrockModelId: MODEL_ID }, { bedrock: client });

function reply(text: string, stopReason: ConverseCommandOutput['stopReason'] = 'end_turn'): ConverseCommandOutput {
  return {
    $metadata: {},
    output: { message: { role: 'assistant', content: [{ text }] } },
    stopReason,
    usage: { inputTokens: 700, outputTokens: 40, totalTokens: 740 },
    metrics: { latencyMs: 900 },
  };
}

async function failure(promise: Promise<unknown>): Promise<JobError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(JobError);
  return err as JobError;
}

beforeEach(() => bedrock.reset());

describe('bedrock summarizer', () => {
  it('asks the configured model for at most N sentences of the document and returns its answer', async () => {
    bedrock
      .on(ConverseCommand)
      .resolves(reply('Riverton will replace its 94-year-old Harbor Bridge after a 7 to 2 council vote. Construction starts next spring and lasts three years.'));
    const controller = new AbortController();

    const result = await summarizer.summarize(news, { maxSentences: 2, signal: controller.signal });

    expect(result).toMatchObject({
      summary: 'Riverton will replace its 94-year-old Harbor Bridge after a 7 to 2 council vote. Construction starts next spring and lasts three years.',
      sentences: ['Riverton will replace its 94-year-old Harbor Bridge after a 7 to 2 council vote.', 'Construction starts next spring and lasts three years.'],
      summarizer: 'bedrock',
      model: MODEL_ID,
    });
    const calls = bedrock.commandCalls(ConverseCommand);
    expect(calls).toHaveLength(1);
    const input = calls[0]!.args[0].input;
    expect(input.modelId).toBe(MODEL_ID);
    expect(input.system?.[0]?.text).toMatch(/at most 2 sentences/);
    expect(input.system?.[0]?.text).toMatch(/no preamble/);
    expect(input.messages?.[0]?.role).toBe('user');
    expect(input.messages?.[0]?.content?.[0]?.text).toContain(LEAD);
    expect(input.inferenceConfig).toEqual({ maxTokens: expect.any(Number), temperature: 0.2 });
    expect((calls[0]!.args as unknown[])[1]).toEqual({ abortSignal: controller.signal });
  });

  it('computes stats, keywords and language locally, the same as the extractive summarizer', async () => {
    bedrock.on(ConverseCommand).resolves(reply('The council approved a new Harbor Bridge.'));
    const fromModel = await summarizer.summarize(news, { maxSentences: 1 });
    const extractive = await createSummarizer({ summarizer: 'extractive', bedrockModelId: MODEL_ID }).summarize(news, { maxSentences: 1 });
    expect(fromModel.stats).toEqual(extractive.stats);
    expect(fromModel.keywords).toEqual(extractive.keywords);
    expect(fromModel.language).toBe('en');
    expect(fromModel.language).toEqual(extractive.language);
  });

  it('drops a preamble and anything past N sentences', async () => {
    bedrock.on(ConverseCommand).resolves(reply("Here is a concise summary of the document:\n\nThe bridge will be replaced. It costs $48 million. Work starts in spring."));
    const { sentences } = await summarizer.summarize(news, { maxSentences: 2 });
    expect(sentences).toEqual(['The bridge will be replaced.', 'It costs $48 million.']);
  });

  it('drops a sentence cut off by the token limit', async () => {
    bedrock.on(ConverseCommand).resolves(reply('The bridge will be replaced. Work starts in spring and the ferry will', 'max_tokens'));
    const { sentences } = await summarizer.summarize(news, { maxSentences: 3 });
    expect(sentences).toEqual(['The bridge will be replaced.']);
  });

  it('sends at most the first 100,000 characters of a long document and says so', async () => {
    bedrock.on(ConverseCommand).resolves(reply('A long report about bridges.'));
    const long = Array.from({ length: 3_000 }, (_, i) => `Paragraph ${i} describes the inspection of bridge span number ${i}.`).join('\n\n');
    await summarizer.summarize({ content: Buffer.from(long), contentType: 'text/plain' }, { maxSentences: 1 });
    const text = bedrock.commandCalls(ConverseCommand)[0]!.args[0].input.messages![0]!.content![0]!.text!;
    const shown = text.slice('<document>\n'.length, text.indexOf('\n</document>'));
    expect(shown.length).toBeLessThanOrEqual(MAX_MODEL_INPUT_CHARACTERS);
    expect(shown.length).toBeGreaterThan(MAX_MODEL_INPUT_CHARACTERS * 0.9);
    expect(long.startsWith(shown)).toBe(true);
    expect(text).toMatch(/Only the first \d+ of \d+ characters are shown/);
  });

  it.each([
    ['ThrottlingException', new ThrottlingException({ message: 'Rate exceeded', $metadata: { httpStatusCode: 400 } })],
    ['an HTTP 429', Object.assign(new Error('slow down'), { name: 'SomeNewException', $metadata: { httpStatusCode: 429 } })],
    ['"too many requests"', Object.assign(new Error('Too many requests, please wait before trying again.'), { name: 'ServiceUnavailableException' })],
  ])('snoozes on throttling (%s): the job runs again later without spending an attempt', async (_, error) => {
    bedrock.on(ConverseCommand).rejects(error);
    const err = await failure(summarizer.summarize(news, { maxSentences: 2 }));
    expect(err.kind).toBe('snooze');
    expect(err.snoozeSeconds).toBeGreaterThanOrEqual(THROTTLE_SNOOZE_SECONDS.min);
    expect(err.snoozeSeconds).toBeLessThanOrEqual(THROTTLE_SNOOZE_SECONDS.max);
    expect(err.message).toContain(error.message);
  });

  it.each([
    ['ServiceUnavailableException', true, new ServiceUnavailableException({ message: 'Service unavailable', $metadata: { httpStatusCode: 503 } })],
    ['a connection reset', true, Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })],
    ['ValidationException', false, new ValidationException({ message: 'The provided model identifier is invalid.', $metadata: { httpStatusCode: 400 } })],
    ['AccessDeniedException', false, new AccessDeniedException({ message: 'You do not have access to the model', $metadata: { httpStatusCode: 403 } })],
    ['ResourceNotFoundException', false, new ResourceNotFoundException({ message: 'Model not found', $metadata: { httpStatusCode: 404 } })],
  ])('maps %s to a JobError with retryable %p', async (_, canRetry, error) => {
    bedrock.on(ConverseCommand).rejects(error);
    const err = await failure(summarizer.summarize(news, { maxSentences: 2 }));
    expect(err.retryable).toBe(canRetry);
    expect(err.message).toMatch(/^bedrock \w+: /);
    expect(err.message).toContain(error.message);
  });

  it('fails for good when the model refuses the content', async () => {
    bedrock.on(ConverseCommand).resolves(reply('', 'content_filtered'));
    const err = await failure(summarizer.summarize(news, { maxSentences: 2 }));
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/declined.*content_filtered/);
  });

  it('retries when the model answers with nothing', async () => {
    bedrock.on(ConverseCommand).resolves(reply('   '));
    const err = await failure(summarizer.summarize(news, { maxSentences: 2 }));
    expect(err.retryable).toBe(true);
  });

  it('rejects with the abort reason when the job is aborted during the call', async () => {
    const controller = new AbortController();
    const reason = new Error('job timed out after 60000 ms');
    bedrock.on(ConverseCommand).callsFake(() => {
      controller.abort(reason);
      throw Object.assign(new Error('Request aborted'), { name: 'AbortError' });
    });
    await expect(summarizer.summarize(news, { maxSentences: 2, signal: controller.signal })).rejects.toBe(reason);
  });

  it('fails a poison document before calling the model', async () => {
    const err = await failure(summarizer.summarize({ content: Buffer.from('   '), contentType: 'text/plain' }, { maxSentences: 2 }));
    expect(err.retryable).toBe(false);
    expect(bedrock.commandCalls(ConverseCommand)).toHaveLength(0);
  });
});

describe('createSummarizer', () => {
  it('selects the summarizer the configuration names', () => {
    expect(createSummarizer({ summarizer: 'extractive', bedrockModelId: MODEL_ID }).name).toBe('extractive');
    expect(createSummarizer({ summarizer: 'bedrock', bedrockModelId: MODEL_ID }).name).toBe('bedrock');
  });

  it('creates no Bedrock client for the extractive summarizer', async () => {
    const result = await createSummarizer({ summarizer: 'extractive', bedrockModelId: MODEL_ID }).summarize(news, { maxSentences: 1 });
    expect(result.summarizer).toBe('extractive');
    expect(bedrock.send.callCount).toBe(0);
  });
});
