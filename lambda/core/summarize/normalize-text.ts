/**
 * The text every summarizer step works on: LF line ends, no control or
 * zero-width characters, one space between words, lines trimmed, paragraphs
 * (blocks) separated by exactly one blank line. A single line break inside a
 * block is a soft wrap, not a sentence end.
 */
export function normalizeText(raw: string): string {
  return raw
    .replace(/\r\n?/g, '\n')
    .replace(/\f/g, '\n\n')
    .replace(/[\u200B-\u200D\u2060\uFEFF\u00AD]/g, '')
    .replace(/[\u0000-\u0008\u000B\u000E-\u001F\u007F-\u009F]/g, ' ')
    .replace(/[^\S\n]+/g, ' ')
    .replace(/ ?\n ?/g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}
