import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { JobError } from '../../lambda/core/errors';
import { extractText, MAX_TEXT_CHARACTERS } from '../../lambda/core/summarize';
import { buildPdf } from '../support/pdf';

const DOCS = join(__dirname, '..', 'fixtures', 'docs');
const fixture = (name: string) => readFileSync(join(DOCS, name));


async function failure(promise: Promise<unknown>): Promise<JobError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(JobError);
  return err as JobError;
}

describe('extractText', () => {
  it('normalizes plain text and honours the charset parameter', async () => {
    const text = await extractText({ content: Buffer.from('  First line  \r\nsecond\tline\r\n\r\n\r\n\r\nNext paragraph.  '), contentType: 'text/plain; charset=utf-8' });
    expect(text).toBe('First line\nsecond line\n\nNext paragraph.');

    const latin1 = await extractText({ content: Buffer.from('Crème brûlée at the café.', 'latin1'), contentType: 'Text/Plain; Charset="ISO-8859-1"' });
    expect(latin1).toBe('Crème brûlée at the café.');

    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('Hello from UTF-16.', 'utf16le')]);
    expect(await extractText({ content: utf16, contentType: 'text/plain' })).toBe('Hello from UTF-16.');
  });

  it('keeps the prose of a Markdown README and drops its syntax, code, images and URLs', async () => {
    const text = await extractText({ content: fixture('readme.md'), contentType: 'text/markdown' });
    expect(text).toContain('tidewatch is a small command-line tool that downloads tide predictions for a coastal station');
    expect(text).toContain('See the installation guide for other options.');
    expect(text).toContain('Find your station id with tidewatch stations --near "Portland, ME".');
    expect(text.split('\n\n')).toEqual(expect.arrayContaining(['Why tidewatch?', 'Installation', 'Height in meters that triggers a warning']));
    for (const leak of ['#', '](', '![', '**', '`', '|', 'http', 'shields.io', 'npm install --global', 'onAlert', 'Screenshot', '---']) {
      expect(text).not.toContain(leak);
    }
  });

  it('handles front matter, inline HTML, escapes, reference links and nested emphasis in Markdown', async () => {
    const markdown = [
      '---',
      'title: Release notes',
      'date: 2024-05-01',
      '---',
      '',
      'Setext Title',
      '============',
      '',
      'Press <kbd>Ctrl</kbd>+C to copy, then read the [guide][docs] and the ***very*** important \\*notes\\*.',
      '> Quoted advice stays as text &amp; entities are decoded.',
      '',
      '    indented text stays',
      '',
      '~~~',
      'secret_code();',
      '~~~',
      '',
      '[docs]: https://example.com/guide "Guide"',
      '[^1]: A footnote definition.',
    ].join('\n');
    const text = await extractText({ content: Buffer.from(markdown), contentType: 'text/markdown; charset=utf-8' });
    expect(text).toBe(
      [
        'Setext Title',
        'Press Ctrl+C to copy, then read the guide and the very important *notes*.\nQuoted advice stays as text & entities are decoded.',
        'indented text stays',
      ].join('\n\n'),
    );
  });

  it('keeps the article of an HTML page and drops scripts, styles, navigation, images and link targets', async () => {
    const text = await extractText({ content: fixture('blog-post.html'), contentType: 'text/html; charset=utf-8' });
    expect(text.startsWith('Why Urban Beekeeping Is Booming\n\n')).toBe(true);
    expect(text).toContain('as a small contribution to protecting pollinators');
    expect(text).toContain('many urban beekeepers see their hives');
    for (const leak of ['gtag', 'dataLayer', 'font-family', 'Shop our merchandise', 'cookies', 'Related posts', 'Privacy policy', 'Subscribe', 'Rooftop hives', 'http', '<', 'trackEvent']) {
      expect(text).not.toContain(leak);
    }
  });

  it('reads the text layer of a PDF, joining pages and mending hyphenated line ends', async () => {
    const text = await extractText({ content: fixture('wetland-survey.pdf'), contentType: 'application/pdf' });
    expect(text).toContain('Survey of the Elm Creek Wetland\nThe spring survey of the Elm Creek wetland found that the number of nesting\nherons has doubled');
    expect(text).toContain('will need yearly management to keep it under control.');
    expect(text).toContain('before the pools dry out.\n\nInvasive reed grass remains the main threat');
  });

  describe('refuses poison documents for good', () => {
    it.each([
      ['an empty body', Buffer.alloc(0), 'text/plain', /^document is empty/],
      ['whitespace only', Buffer.from(' \n\t\r\n   \n'), 'text/plain', /^document is empty/],
      ['HTML without visible text', Buffer.from('<html><head><script>run()</script></head><body><nav><a href="/">Home</a></nav></body></html>'), 'text/html', /^document is empty/],
      ['random bytes sent as text', Buffer.concat([Buffer.from([0, 1, 2, 0xff, 0xfe]), Buffer.from(Array.from({ length: 4000 }, (_, i) => (i * 7919) % 256))]), 'text/plain', /^document is not valid text/],
      ['valid UTF-8 that is mostly control characters', Buffer.from('\u0001\u0002\u0003abc\u0004\u0005'.repeat(200)), 'text/plain', /^document is not valid text: .*control characters/],
      ['an unknown charset', Buffer.from('hello'), 'text/plain; charset=x-klingon', /^document is not valid text: unsupported charset "x-klingon"/],
      ['bytes that are not a PDF', Buffer.from('just some text'), 'application/pdf', /^could not read PDF: the file has no PDF header/],
      ['a truncated PDF', fixture('wetland-survey.pdf').subarray(0, 300), 'application/pdf', /^could not read PDF: /],
      ['a PDF header followed by garbage', Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.from(Array.from({ length: 2000 }, (_, i) => (i * 31) % 256))]), 'application/pdf', /^could not read PDF: /],
      ['a PDF without a text layer', buildPdf([[], []]), 'application/pdf', /^the PDF has no text layer \(2 pages/],
      ['an unsupported content type', Buffer.from([0x89, 0x50, 0x4e, 0x47]), 'image/png', /^unsupported content type "image\/png"/],
    ])('%s', async (_, content, contentType, message) => {
      const err = await failure(extractText({ content, contentType }));
      expect(err.retryable).toBe(false);
      expect(err.message).toMatch(message);
    });

    it('text beyond the size limit, naming the limit', async () => {
      const content = Buffer.from('All work and no play makes a dull summary. '.repeat(Math.ceil(MAX_TEXT_CHARACTERS / 43) + 10));
      const err = await failure(extractText({ content, contentType: 'text/plain' }));
      expect(err.retryable).toBe(false);
      expect(err.message).toMatch(/^document is too large: \d+ characters of text, the limit is 2000000$/);
    });
  });

  it('parses several PDFs at once, a few at a time', async () => {
    const pdf = { content: fixture('wetland-survey.pdf'), contentType: 'application/pdf' };
    const texts = await Promise.all(Array.from({ length: 5 }, () => extractText(pdf)));
    expect(new Set(texts).size).toBe(1);
    expect(texts[0]).toContain('Invasive reed grass remains the main threat');
  });

  it('gives up a PDF waiting for a parser when its job is aborted, and frees nothing twice', async () => {
    const pdf = { content: fixture('wetland-survey.pdf'), contentType: 'application/pdf' };
    const busy = [extractText(pdf), extractText(pdf)];
    const controller = new AbortController();
    const reason = new Error('lease lost');
    const queued = extractText(pdf, controller.signal);
    controller.abort(reason);
    await expect(queued).rejects.toBe(reason);
    await Promise.all(busy);
    await expect(Promise.all([extractText(pdf), extractText(pdf), extractText(pdf)])).resolves.toHaveLength(3);
  });

  it('stops parsing a PDF when the job is aborted', async () => {
    const controller = new AbortController();
    const reason = new Error('job timed out');
    const pending = extractText({ content: fixture('wetland-survey.pdf'), contentType: 'application/pdf' }, controller.signal);
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
  });
});
