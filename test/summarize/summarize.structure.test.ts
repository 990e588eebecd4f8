import { createSummarizer, extractText } from '../../lambda/core/summarize';
import { segmentText } from '../../lambda/core/summarize/split-sentences';

const summarizer = createSummarizer({ summarizer: 'extractive', bedrockModelId: 'unused' });
const markdown = (content: string) => ({ content: Buffer.from(content), contentType: 'text/markdown' });
const html = (content: string) => ({ content: Buffer.from(content), contentType: 'text/html' });

describe('document structure', () => {
  it('reads a Markdown table without edge pipes as cells, never as a sentence', async () => {
    const doc = [
      '# tidewatch',
      '',
      'tidewatch warns you before high water reaches a level you choose at your station.',
      '',
      'Option | Meaning | Default',
      '--- | --- | ---',
      'level | Height in meters that triggers a warning | 2.5',
      'station | The tide station to watch for alerts | none',
      '',
      'Alerts arrive by e-mail or as a desktop notification when the tide turns.',
    ].join('\n');
    const text = await extractText(markdown(doc));
    expect(text).not.toContain('|');
    expect(text).not.toContain('---');
    expect(text.split('\n\n')).toEqual(expect.arrayContaining(['Option', 'level', 'Height in meters that triggers a warning', '2.5']));
    const { sentences } = await summarizer.summarize(markdown(doc), { maxSentences: 2 });
    expect(sentences).toEqual([
      'tidewatch warns you before high water reaches a level you choose at your station.',
      'Alerts arrive by e-mail or as a desktop notification when the tide turns.',
    ]);
  });

  it('drops fenced code and lets list items be chosen when the list is the content', async () => {
    const doc = [
      '# Packing list',
      '',
      '```sh',
      'echo "not prose at all, but long enough to look like a sentence."',
      '```',
      '',
      '- Waterproof boots for the wet rocks near the lighthouse',
      '- A tide table for the harbor and the lighthouse causeway',
      '- A headlamp with spare batteries for the walk back',
    ].join('\n');
    const result = await summarizer.summarize(markdown(doc), { maxSentences: 2 });
    expect(result.summary).not.toContain('echo');
    expect(result.sentences).toHaveLength(2);
    for (const s of result.sentences) expect(doc).toContain(`- ${s}`);
    // Items have no full stop of their own; the summary reads as sentences.
    expect(result.summary).toBe(`${result.sentences[0]}. ${result.sentences[1]}`);
  });

  it('marks HTML list items as items, and headings as fragments', async () => {
    const text = await extractText(
      html('<h2>Why it matters</h2><p>The harbor bridge carries twelve thousand cars a day across the river.</p><ul><li>Built in 1931 by the city</li><li>Closed twice for repairs</li></ul>'),
    );
    expect(segmentText(text).map((s) => s.kind)).toEqual(['fragment', 'sentence', 'item', 'item']);
  });

  it('starts a new block at each reference entry of a PDF-like text', () => {
    const text = [
      'Herons nest earlier in restored wetlands [1].',
      '[1] Smith, J. and Lee, K. Nesting of grey herons in restored',
      'wetlands. Wetland Ecology 12',
      '[2] Brown, A. Water levels and bird counts in Elm Creek. Field',
      'Notes 4',
    ].join('\n');
    const sentences = segmentText(text).map((s) => s.text);
    expect(sentences).toEqual([
      'Herons nest earlier in restored wetlands [1].',
      '[1] Smith, J. and Lee, K. Nesting of grey herons in restored wetlands.',
      'Wetland Ecology 12',
      '[2] Brown, A. Water levels and bird counts in Elm Creek.',
      'Field Notes 4',
    ]);
  });

  it('leaves publication stamps and bylines out of a summary', async () => {
    const page = `<html><body><article><h1>Harbor bridge to be replaced</h1>
      <p>Published 14 March 2026, 21:40.</p><p>Updated 15 March 2026, 08:10.</p>
      <p>The city council voted on Tuesday to replace the harbor bridge with a new crossing for buses and bikes.</p>
      <p>Engineers found corrosion in the steel beams of the bridge last year, the council said.</p>
      <p>A ferry will carry pedestrians across the harbor while the new bridge is built over three years.</p>
      </article></body></html>`;
    const { sentences } = await summarizer.summarize(html(page), { maxSentences: 2 });
    for (const s of sentences) expect(s).not.toMatch(/Published|Updated/);
    expect(sentences[0]).toBe('The city council voted on Tuesday to replace the harbor bridge with a new crossing for buses and bikes.');
  });
});
