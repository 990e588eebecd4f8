import { permanent } from '../errors';
import { parseContentType } from './content-type';
import { decodeText } from './decode-text';
import { htmlMainText } from './html-to-plain-text';
import { markdownToPlainText } from './markdown-to-plain-text';
import { normalizeText } from './normalize-text';
import { pdfToText } from './pdf-to-text';
import type { DocumentInput } from './types';

import { MAX_TEXT_CHARACTERS } from './limits';

export { MAX_TEXT_CHARACTERS };

const EXTRACTORS: Record<string, (doc: DocumentInput, charset: string | undefined, signal?: AbortSignal) => Promise<string>> = {
  'text/plain': async (doc, charset) => decodeText(doc.content, charset),
  'text/markdown': async (doc, charset) => markdownToPlainText(decodeText(doc.content, charset)),
  'text/x-markdown': async (doc, charset) => markdownToPlainText(decodeText(doc.content, charset)),
  'text/html': async (doc, charset) => htmlMainText(decodeText(doc.content, charset)),
  'application/xhtml+xml': async (doc, charset) => htmlMainText(decodeText(doc.content, charset)),
  'application/pdf': async (doc, _charset, signal) => pdfToText(doc.content, signal),
};

/**
 * The plain text of a document, normalized (see `normalizeText`): what the
 * summarizers read. Anything another attempt could not fix (an empty, binary,
 * corrupt, oversized or unsupported document) is a permanent JobError.
 */
export async function extractText(doc: DocumentInput, signal?: AbortSignal): Promise<string> {
  const { mediaType, charset } = parseContentType(doc.contentType);
  const extract = EXTRACTORS[mediaType];
  if (!extract) {
    throw permanent(`unsupported content type "${mediaType.slice(0, 100)}"; supported: text/plain, text/markdown, text/html, application/pdf`);
  }
  if (doc.content.length === 0) throw permanent('document is empty');
  const text = normalizeText(await extract(doc, charset, signal));
  if (text === '') throw permanent('document is empty (no text after removing markup and whitespace)');
  if (text.length > MAX_TEXT_CHARACTERS) {
    throw permanent(`document is too large: ${text.length} characters of text, the limit is ${MAX_TEXT_CHARACTERS}`);
  }
  return text;
}
