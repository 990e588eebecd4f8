import { permanent } from '../errors';

/**
 * Above this share of control characters (and U+FFFD replacement characters)
 * a "text" upload is taken for binary data: real text has nearly none, while
 * random bytes that happen to decode are full of them.
 */
const MAX_CONTROL_RATIO = 0.01;

// C0 controls except tab, line feed, form feed and carriage return; DEL; C1 controls; U+FFFD.
const SUSPICIOUS = /[\u0000-\u0008\u000B\u000E-\u001F\u007F-\u009F\uFFFD]/g;

/**
 * Bytes to a string, refusing what is not text. The declared charset wins;
 * without one a UTF-16 byte order mark is honoured, else UTF-8 is required
 * (strictly: one invalid sequence fails the document rather than letting
 * replacement characters into a summary).
 */
export function decodeText(bytes: Buffer, charset?: string): string {
  const encoding = charset ?? sniffEncoding(bytes);
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(encoding, { fatal: true });
  } catch {
    throw permanent(`document is not valid text: unsupported charset "${encoding}"`);
  }
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw permanent(`document is not valid text: it is not valid ${decoder.encoding}`);
  }
  const suspicious = text.match(SUSPICIOUS)?.length ?? 0;
  if (text.length > 0 && suspicious / text.length > MAX_CONTROL_RATIO) {
    throw permanent(`document is not valid text: ${suspicious} of its ${text.length} characters are control characters (binary data?)`);
  }
  return text;
}

function sniffEncoding(bytes: Buffer): string {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return 'utf-16le';
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return 'utf-16be';
  return 'utf-8';
}
