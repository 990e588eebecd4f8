import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobError } from '../../lambda/core/errors';
import { pdfReaderDir, pdfToText, pdfToTextWith } from '../../lambda/core/summarize/pdf-to-text';
import { buildPdf } from '../support/pdf';

const survey = readFileSync(join(__dirname, '..', 'fixtures', 'docs', 'wetland-survey.pdf'));


describe('pdfToText (unpdf, no native code)', () => {
  it('finds the reader in node_modules outside a bundle', () => {
    const dir = pdfReaderDir();
    expect(dir).toMatch(/node_modules[\\/]unpdf[\\/]dist$/);
    expect(readFileSync(join(dir, 'pdfjs.mjs'), 'utf8').length).toBeGreaterThan(100_000);
  });

  it('separates pages with a blank line and leaves out pages without text', async () => {
    const text = await pdfToText(buildPdf([['First page, first line.', 'First page, second line.'], [], ['Third page.']]));
    expect(text).toBe('First page, first line.\nFirst page, second line.\n\nThird page.');
  });

  it('mends words hyphenated at a line end, and keeps real hyphens', async () => {
    const text = await pdfToText(buildPdf([['The summar-', 'ization of a well-known survey.']]));
    expect(text).toBe('The summarization of a well-known survey.');
  });

  it('reads the same text from the fixture on every call (the reader is loaded once per worker, not cached wrongly)', async () => {
    const [a, b] = await Promise.all([pdfToText(survey), pdfToText(survey)]);
    expect(a).toBe(b);
    expect(a).toContain('Survey of the Elm Creek Wetland');
  });

  it('fails for good, saying what to fix, when the reader is not deployed', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'no-unpdf-'));
    try {
      const err = await pdfToTextWith(empty, survey).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(JobError);
      expect((err as JobError).retryable).toBe(false);
      expect((err as JobError).message).toMatch(new RegExp(`^could not read PDF: the PDF reader \\(unpdf\\) could not be loaded from ${empty.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('answers an already aborted job at once, without starting a worker', async () => {
    const controller = new AbortController();
    const reason = new Error('lease lost');
    controller.abort(reason);
    await expect(pdfToText(survey, controller.signal)).rejects.toBe(reason);
  });
});
