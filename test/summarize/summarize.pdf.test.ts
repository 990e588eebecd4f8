import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobError } from '../../lambda/core/errors';
import { pdfReaderDir, pdfToText, pdfToTextWith } from '../../lambda/core/summarize/pdf-to-text';

const survey = readFileSync(join(__dirname, '..', 'fixtures', 'docs', 'wetland-survey.pdf'));

/** An uncompressed PDF with one text object per page (an empty array: a page with a line and no text). */
function buildPdf(pages: string[][]): Buffer {
  const objects: string[] = [];
  const pageIds = pages.map((_, i) => 3 + i * 2);
  const fontId = 3 + pages.length * 2;
  objects[1] = '<< /Type /Catalog /Pages 2 0 R >>';
  objects[2] = `<< /Type /Pages /Kids [${pageIds.map((id) => `${id} 0 R`).join(' ')}] /Count ${pages.length} >>`;
  pages.forEach((lines, i) => {
    const stream = lines.length > 0 ? ['BT', '/F1 11 Tf', '14 TL', '72 720 Td', ...lines.map((l) => `(${l}) Tj T*`), 'ET'].join('\n') : '72 72 m 300 300 l S';
    const id = pageIds[i]!;
    objects[id] = `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 ${fontId} 0 R >> >> /Contents ${id + 1} 0 R >>`;
    objects[id + 1] = `<< /Length ${Buffer.byteLength(stream, 'latin1')} >>\nstream\n${stream}\nendstream`;
  });
  objects[fontId] = '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>';
  let out = '%PDF-1.4\n';
  const offsets: number[] = [];
  for (let id = 1; id < objects.length; id++) {
    offsets[id] = Buffer.byteLength(out, 'latin1');
    out += `${id} 0 obj\n${objects[id]}\nendobj\n`;
  }
  const xref = Buffer.byteLength(out, 'latin1');
  out += `xref\n0 ${objects.length}\n0000000000 65535 f \n`;
  for (let id = 1; id < objects.length; id++) out += `${String(offsets[id]).padStart(10, '0')} 00000 n \n`;
  out += `trailer\n<< /Size ${objects.length} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

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
