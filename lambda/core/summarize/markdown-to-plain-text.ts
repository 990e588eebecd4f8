import { htmlToPlainText, tidyMarkupText } from './html-to-plain-text';

/*
 * Markdown is stripped line by line rather than rendered: `marked` (v18) is an
 * ES module only, which plain `require` loads on Node 20.19+ but jest on Node
 * 20 cannot, and a summary needs the prose, not a faithful rendering.
 * Headings, list items, quotes and table rows each become a block; fenced code
 * is dropped (code is not prose and would crowd the ranking); links keep their
 * text, images and reference definitions disappear.
 */
export function markdownToPlainText(markdown: string): string {
  const blocks: string[] = [];
  let fence: { char: string; length: number } | null = null;
  let skipHtml: string | null = null;
  const lines = withoutFrontMatter(markdown.replace(/\r\n?/g, '\n')).split('\n');

  let inTable = false;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    if (fence) {
      const close = raw.match(/^ {0,3}(`{3,}|~{3,})\s*$/);
      if (close && close[1]![0] === fence.char && close[1]!.length >= fence.length) fence = null;
      continue;
    }
    if (skipHtml) {
      if (new RegExp(`</${skipHtml}\\s*>`, 'i').test(raw)) skipHtml = null;
      continue;
    }
    const open = raw.match(/^ {0,3}(`{3,}|~{3,})/);
    if (open) {
      fence = { char: open[1]![0]!, length: open[1]!.length };
      blocks.push('');
      continue;
    }
    const rawHtml = raw.match(/^\s*<(script|style|pre|svg|iframe)\b/i);
    if (rawHtml && !new RegExp(`</${rawHtml[1]}\\s*>`, 'i').test(raw)) {
      skipHtml = rawHtml[1]!;
      continue;
    }
    // GFM tables need no edge pipes: a row is known by the delimiter row under the header.
    if (!inTable && raw.includes('|') && i + 1 < lines.length && DELIMITER_ROW.test(lines[i + 1]!)) inTable = true;
    else if (inTable && (raw.trim() === '' || !raw.includes('|'))) inTable = false;
    if (inTable) {
      blocks.push(...tableRow(raw));
      continue;
    }
    blocks.push(...blockLine(raw));
  }
  return tidyMarkupText(blocks.map(inlineText).join('\n').replace(/\n{3,}/g, '\n\n'));
}

/** Static-site generators put YAML metadata between `---` lines at the very top. */
function withoutFrontMatter(markdown: string): string {
  return markdown.replace(/^---[ \t]*\n[\s\S]*?\n(?:---|\.\.\.)[ \t]*(?:\n|$)/, '');
}

const DELIMITER_ROW = /^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$/;

/** Each cell its own block, so a row never reads as a sentence; the delimiter row disappears. */
function tableRow(raw: string): string[] {
  if (DELIMITER_ROW.test(raw)) return [''];
  const cells = raw
    .trim()
    .replace(/^\|/, '')
    .replace(/(?<!\\)\|$/, '')
    .split(/(?<!\\)\|/)
    .map((c) => c.trim())
    .filter(Boolean);
  return ['', ...cells.flatMap((c) => [c, '']), ''];
}

/** One source line as output lines: '' marks a block boundary. */
function blockLine(raw: string): string[] {
  let line = raw;
  // Reference and footnote definitions, horizontal rules, setext underlines, table delimiter rows.
  if (/^ {0,3}\[[^\]]+\]:/.test(line)) return [''];
  if (/^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/.test(line) || /^ {0,3}=+[ \t]*$/.test(line)) return [''];
  if (/^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$/.test(line) && line.includes('-')) return [''];

  while (/^ {0,3}>/.test(line)) line = line.replace(/^ {0,3}> ?/, '');

  const heading = line.match(/^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/);
  if (heading) return ['', heading[1] ?? '', ''];

  const item = line.match(/^\s*(?:[-*+]|\d{1,9}[.)])[ \t]+(?:\[[ xX]\][ \t]+)?(.*)$/);
  // The "- " mark tells the sentence splitter that the block is a list item.
  if (item) return ['', `- ${item[1]!}`];

  if (/^\s*\|.*\|\s*$/.test(line)) {
    const cells = line.trim().slice(1, -1).split('|').map((c) => c.trim()).filter(Boolean);
    return ['', ...cells.flatMap((c) => [c, '']), ''];
  }
  return [line];
}

const ESCAPABLE = /\\([\\`*_{}[\]()#+\-.!|>~<])/g;
const placeholder = (c: string) => String.fromCharCode(0xe000 + c.charCodeAt(0));

function inlineText(line: string): string {
  if (line.trim() === '') return line;
  let text = line.replace(ESCAPABLE, (_, c: string) => placeholder(c));
  text = text
    .replace(/`+([^`]+?)`+/g, '$1')
    .replace(/!\[[^\]]*\]\([^)]*\)/g, '')
    .replace(/!\[[^\]]*\]\[[^\]]*\]/g, '')
    .replace(/\[\^[^\]]+\]/g, '')
    .replace(/\[([^\]]*)\]\((?:[^()\s]|\([^)]*\))*(?:\s+(?:"[^"]*"|'[^']*'|\([^)]*\)))?\s*\)/g, '$1')
    .replace(/\[([^\]]*)\]\[[^\]]*\]/g, '$1')
    .replace(/<(?:https?|mailto|ftp):[^>\s]*>/gi, '')
    .replace(/\*+|~~/g, '')
    .replace(/(^|[^\p{L}\p{N}])_+|_+(?=[^\p{L}\p{N}]|$)/gu, '$1');
  if (/<\/?[a-z][^>]*>/i.test(text)) text = htmlToPlainText(text).replace(/\n+/g, ' ');
  else text = decodeEntities(text);
  return text.replace(/[\uE000-\uE07F]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xe000));
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', mdash: '—', ndash: '–', hellip: '…' };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, name: string) => {
    if (name[0] === '#') {
      const code = name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[name.toLowerCase()] ?? whole;
  });
}
