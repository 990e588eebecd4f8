import { compile, type HtmlToTextOptions } from 'html-to-text';

// Page furniture and non-prose: none of it belongs in a summary.
const SKIPPED = [
  'head', 'script', 'style', 'noscript', 'template', 'svg', 'canvas', 'iframe', 'object', 'video', 'audio',
  'nav', 'aside', 'footer', 'form', 'button', 'select', 'textarea', 'img', 'picture', 'figure',
  'pre', 'hr', '[hidden]', '[aria-hidden="true"]', '[role="navigation"]', '[role="dialog"]',
];

// As plain blocks: html-to-text would otherwise add list bullets, "> " quote
// prefixes and ASCII table borders, all of which would read as sentence text.
const BLOCKS = ['ul', 'ol', 'li', 'dl', 'dt', 'dd', 'blockquote', 'table', 'thead', 'tbody', 'tr', 'th', 'td'];

const OPTIONS: HtmlToTextOptions = {
  wordwrap: false,
  selectors: [
    { selector: 'a', options: { ignoreHref: true } },
    ...SKIPPED.map((selector) => ({ selector, format: 'skip' })),
    ...['h1', 'h2', 'h3', 'h4', 'h5', 'h6'].map((selector) => ({ selector, options: { uppercase: false } })),
    ...BLOCKS.map((selector) => ({ selector, format: 'block' })),
  ],
};

// Compiled once: html-to-text builds its selector decision tree per call otherwise.
const convert = compile(OPTIONS);

/**
 * Readable text of an HTML page, one block per paragraph, heading, list item
 * or table cell. Links keep their text and lose their URL; images are dropped.
 */
export function htmlToPlainText(html: string): string {
  // Each output line is a block (heading, paragraph, list item, cell) and must not run into the next.
  return tidyMarkupText(convert(html)).replace(/\n+/g, '\n\n');
}

/**
 * Bare URLs in markup are link targets written out; they are dropped like the
 * others. A dropped image or link can leave a space before punctuation.
 */
export function tidyMarkupText(text: string): string {
  return text.replace(/\b(?:https?:\/\/|www\.)[^\s<>"')\]]+/gi, '').replace(/[^\S\n]+([.,;:!?])(?=\s|$)/g, '$1');
}
