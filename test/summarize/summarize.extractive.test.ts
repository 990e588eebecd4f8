import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { JobError } from '../../lambda/core/errors';
import { createSummarizer, extractText, type DocumentInput, type SummaryResult } from '../../lambda/core/summarize';

const DOCS = join(__dirname, '..', 'fixtures', 'docs');
const doc = (name: string, contentType: string): DocumentInput => ({ content: readFileSync(join(DOCS, name)), contentType, filename: name });
const text = (content: string): DocumentInput => ({ content: Buffer.from(content), contentType: 'text/plain' });

const summarizer = createSummarizer({ summarizer: 'extractive', bedrockModelId: 'unused' });

const FIXTURES: Array<[string, string]> = [
  ['news-article.txt', 'text/plain'],
  ['essay.txt', 'text/plain'],
  ['readme.md', 'text/markdown'],
  ['blog-post.html', 'text/html'],
  ['wetland-survey.pdf', 'application/pdf'],
];

/** Every summary sentence appears verbatim in the document's text (line wraps aside), in document order. */
async function expectVerbatimInOrder(input: DocumentInput, result: SummaryResult): Promise<void> {
  const flat = (await extractText(input)).replace(/\s+/g, ' ');
  let from = 0;
  for (const sentence of result.sentences) {
    const at = flat.indexOf(sentence, from);
    expect(at).toBeGreaterThanOrEqual(from);
    from = at + sentence.length;
  }
}

describe('extractive summarizer', () => {
  it.each(FIXTURES)('%s: exactly maxSentences sentences, verbatim, in document order', async (name, contentType) => {
    const input = doc(name, contentType);
    const result = await summarizer.summarize(input, { maxSentences: 3 });
    expect(result.summarizer).toBe('extractive');
    expect(result.model).toBeUndefined();
    expect(result.sentences).toHaveLength(3);
    expect(result.summary).toBe(result.sentences.join(' '));
    expect(new Set(result.sentences).size).toBe(3);
    for (const sentence of result.sentences) expect(sentence).toMatch(/^\S.*[.!?]["'”)]?$/);
    await expectVerbatimInOrder(input, result);
    expect(result.keywords.length).toBeGreaterThanOrEqual(5);
    expect(result.keywords.length).toBeLessThanOrEqual(10);
    // Lowercase words, or a multi-word name ("elm creek").
    for (const keyword of result.keywords) expect(keyword).toMatch(/^[a-z][a-z'-]+(?: [a-z][a-z'-]+){0,2}$/);
    expect(result.language).toBe('en');
  });

  it('leads a news summary with the lead sentence, not the headline', async () => {
    const { sentences, keywords } = await summarizer.summarize(doc('news-article.txt', 'text/plain'), { maxSentences: 1 });
    expect(sentences).toEqual([
      "The Riverton city council voted 7 to 2 on Tuesday night to replace the 94-year-old Harbor Bridge with a new crossing for cars, buses, cyclists and pedestrians, ending a decade of debate over the city's most famous landmark.",
    ]);
    expect(keywords).toEqual(expect.arrayContaining(['bridge', 'council', 'city']));
  });

  it('summarizes a README by what the tool does, with no Markdown or URL in it', async () => {
    const { summary, sentences, keywords } = await summarizer.summarize(doc('readme.md', 'text/markdown'), { maxSentences: 2 });
    expect(sentences[0]).toBe(
      'tidewatch is a small command-line tool that downloads tide predictions for a coastal station and warns you before high water reaches a level you choose.',
    );
    expect(summary).not.toMatch(/[#*`|[\]]|\]\(|https?:|www\.|npm install/);
    expect(keywords).toEqual(expect.arrayContaining(['tidewatch', 'tide', 'predictions']));
  });

  it('summarizes an HTML article from its paragraphs only', async () => {
    const { summary, sentences, keywords } = await summarizer.summarize(doc('blog-post.html', 'text/html'), { maxSentences: 2 });
    expect(sentences).toContain(
      'Urban beekeeping has grown rapidly over the past decade, as city dwellers install hives on rooftops, balconies and community gardens to support pollinators and harvest their own honey.',
    );
    expect(summary).not.toMatch(/gtag|dataLayer|cookie|Shop|Subscribe|Related|Privacy|https?:|[<>{}]/);
    expect(keywords).toEqual(expect.arrayContaining(['hives', 'urban']));
    expect(keywords.some((k) => k.startsWith('bee'))).toBe(true);
  });

  it('summarizes a hard-wrapped essay into whole sentences', async () => {
    const { sentences, keywords } = await summarizer.summarize(doc('essay.txt', 'text/plain'), { maxSentences: 4 });
    expect(sentences).toHaveLength(4);
    for (const sentence of sentences) expect(sentence).not.toContain('\n');
    expect(keywords).toEqual(expect.arrayContaining(['bread', 'yeast', 'loaf']));
  });

  it('summarizes a PDF report by its finding', async () => {
    const { sentences, keywords } = await summarizer.summarize(doc('wetland-survey.pdf', 'application/pdf'), { maxSentences: 1 });
    expect(sentences).toEqual([
      'The spring survey of the Elm Creek wetland found that the number of nesting herons has doubled since the restoration project began three years ago.',
    ]);
    expect(keywords).toEqual(expect.arrayContaining(['wetland', 'heron', 'survey']));
  });

  it('counts sentences, words, characters and reading time', async () => {
    const input = "The cat sat on the mat. It was 3 o'clock!\nWas it?";
    const { stats } = await summarizer.summarize(text(input), { maxSentences: 1 });
    expect(stats).toEqual({ sentenceCount: 3, wordCount: 12, characterCount: input.length, readingTimeMinutes: 1 });
    expect(input.length).toBe(49);

    const words = Array.from({ length: 401 }, (_, i) => `word${i}`).join(' ');
    expect((await summarizer.summarize(text(`${words}.`), { maxSentences: 1 })).stats.readingTimeMinutes).toBe(3);
  });

  it('reports stats of a fixture that match an independent count', async () => {
    const raw = readFileSync(join(DOCS, 'essay.txt'), 'utf8');
    const { stats } = await summarizer.summarize(text(raw), { maxSentences: 3 });
    const words = raw.match(/[A-Za-z0-9]+(?:'[A-Za-z]+)?/g)!.length;
    // The title line plus one sentence per closing full stop.
    const sentences = 1 + raw.match(/[.!?](?=\s|$)/g)!.length;
    expect(stats).toEqual({
      sentenceCount: sentences,
      wordCount: words,
      characterCount: [...raw.trim()].length,
      readingTimeMinutes: Math.ceil(words / 200),
    });
  });

  it('returns a one-sentence document as it is, and a short document whole', async () => {
    const one = await summarizer.summarize(text('  Lighthouses guide ships.  \n'), { maxSentences: 3 });
    expect(one.sentences).toEqual(['Lighthouses guide ships.']);
    expect(one.summary).toBe('Lighthouses guide ships.');
    expect(one.stats).toMatchObject({ sentenceCount: 1, wordCount: 3, readingTimeMinutes: 1 });

    const two = await summarizer.summarize(text('Hi.'), { maxSentences: 3 });
    expect(two.sentences).toEqual(['Hi.']);

    const short = await summarizer.summarize(text('First point is made here. Second point follows it. Third point closes.'), { maxSentences: 5 });
    expect(short.sentences).toEqual(['First point is made here.', 'Second point follows it.', 'Third point closes.']);
  });

  it('keeps abbreviations and initials inside their sentence', async () => {
    const { sentences } = await summarizer.summarize(
      text('Dr. Ada Byron met J. R. Smith at 3 p.m. on Jan. 5 to review the engine plans. The meeting went well. Mr. Babbage sent No. 5 of his notes afterwards.'),
      { maxSentences: 3 },
    );
    expect(sentences).toEqual([
      'Dr. Ada Byron met J. R. Smith at 3 p.m. on Jan. 5 to review the engine plans.',
      'The meeting went well.',
      'Mr. Babbage sent No. 5 of his notes afterwards.',
    ]);
  });

  it('does not repeat a sentence that the document repeats', async () => {
    const repeated = 'The harbor bridge will be replaced next spring by the city council.';
    const body = [
      repeated,
      'Engineers found corrosion in the steel beams of the harbor bridge.',
      repeated,
      'A ferry will carry pedestrians across the harbor during construction of the bridge.',
      repeated,
      'The council approved the bridge budget on Tuesday.',
    ].join(' ');
    const { sentences } = await summarizer.summarize(text(body), { maxSentences: 3 });
    expect(sentences.filter((s) => s === repeated)).toHaveLength(1);
    expect(sentences).toHaveLength(3);
  });

  it('falls back to fragments when a document has no complete sentence', async () => {
    const { sentences } = await summarizer.summarize(text('Shopping list\n\n- eggs\n- flour\n- butter'), { maxSentences: 2 });
    expect(sentences).toHaveLength(2);
  });

  it('refuses a maxSentences outside 1 to 50 for good', async () => {
    for (const maxSentences of [0, -1, 1.5, 51, Number.NaN]) {
      const err = await summarizer.summarize(text('One sentence.'), { maxSentences }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(JobError);
      expect((err as JobError).retryable).toBe(false);
      expect((err as JobError).message).toMatch(/^maxSentences must be an integer from 1 to 50/);
    }
  });

  it('stops with the abort reason when the job is aborted', async () => {
    const reason = new Error('lease lost');
    await expect(summarizer.summarize(text('Any text at all.'), { maxSentences: 1, signal: AbortSignal.abort(reason) })).rejects.toBe(reason);

    const controller = new AbortController();
    const big = Array.from({ length: 20_000 }, (_, i) => `Sentence ${i} is about keeper number ${i % 97} and lamp ${i % 89}.`).join(' ');
    const pending = summarizer.summarize(text(big), { maxSentences: 3, signal: controller.signal });
    setTimeout(() => controller.abort(reason), 20);
    await expect(pending).rejects.toBe(reason);
  });

  it('summarizes about 2 MB of text within a few seconds', async () => {
    const paragraphs = readFileSync(join(DOCS, 'news-article.txt'), 'utf8').split('\n\n').slice(1);
    const parts: string[] = [];
    let size = 0;
    for (let i = 0; size < 1_950_000; i++) {
      // Vary each copy so the graph is not one clique of identical sentences.
      const paragraph = `${paragraphs[i % paragraphs.length]!} Report ${i} covers district ${i % 41} and ward ${i % 13}.`;
      parts.push(paragraph);
      size += paragraph.length + 2;
    }
    const t0 = Date.now();
    const result = await summarizer.summarize(text(parts.join('\n\n')), { maxSentences: 5 });
    const elapsed = Date.now() - t0;
    expect(result.sentences).toHaveLength(5);
    expect(result.stats.characterCount).toBeGreaterThan(1_900_000);
    expect(elapsed).toBeLessThan(10_000);
  });
});
