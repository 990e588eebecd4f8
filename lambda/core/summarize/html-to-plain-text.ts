import { Readability } from '@mozilla/readability';
import JSDOMParser from '@mozilla/readability/JSDOMParser';
import render from 'dom-serializer';
import { compile, type HtmlToTextOptions } from 'html-to-text';
import { parseDocument } from 'htmlparser2';

// Page furniture and non-prose: none of it belongs in a summary.
const SKIPPED = [
  'head', 'script', 'style', 'noscript', 'template', 'svg', 'canvas', 'iframe', 'object', 'video', 'audio',
  'nav', 'aside', 'footer', 'form', 'button', 'select', 'textarea', 'img', 'picture', 'figure',
  'pre', 'hr', '[hidden]', '[aria-hidden="true"]', '[role="navigation"]', '[role="dialog"]',
];

// As plain blocks: html-to-text would otherwise add "> " quote prefixes and
// ASCII table borders, which would read as sentence text. List items keep a
// "- " mark, which the sentence splitter reads as "this block is a list item".
const BLOCKS = ['dl', 'dt', 'dd', 'blockquote', 'table', 'thead', 'tbody', 'tr', 'th', 'td'];
const LISTS = [
  { selector: 'ul', format: 'unorderedList', options: { itemPrefix: '- ' } },
  { selector: 'ol', format: 'unorderedList', options: { itemPrefix: '- ' } },
];

const OPTIONS: HtmlToTextOptions = {
  wordwrap: false,
  selectors: [
    { selector: 'a', options: { ignoreHref: true } },
    ...SKIPPED.map((selector) => ({ selector, format: 'skip' })),
    ...['h1', 'h2', 'h3', 'h4', 'h5', 'h6'].map((selector) => ({ selector, options: { uppercase: false } })),
    ...BLOCKS.map((selector) => ({ selector, format: 'block' })),
    ...LISTS,
  ],
};

// Compiled once: html-to-text builds its selector decision tree per call otherwise.
const convert = compile(OPTIONS);

/**
 * Below this share of the page's text, what Readability kept is taken for a
 * misjudged fragment (a page of lists, a form) and the whole page is used.
 */
const MIN_MAIN_SHARE = 0.05;
const MIN_MAIN_CHARACTERS = 200;

/**
 * The main content of an HTML page as text: Mozilla's Readability (the
 * Firefox Reader View) picks the article out of the page chrome (navigation,
 * cookie banners, share bars, bylines, "related articles", footers) by
 * scoring the page's blocks on text density, link density and class names.
 *
 * Readability runs over JSDOMParser, the small DOM (37 KB) that ships with it
 * for Firefox's reader-mode worker: linkedom needs css-select 7, an ES module
 * that jest on Node 20 cannot load, and jsdom is several megabytes.
 * JSDOMParser reads only well-formed markup, so the page is first parsed the
 * forgiving HTML way by htmlparser2 (which html-to-text already uses: unclosed
 * `<p>` and `<li>`, bare `<meta>`) and written back well formed, without the
 * scripts, styles and comments whose text it would trip on. A page
 * Readability finds no article in is converted whole, with navigation,
 * asides and footers dropped by tag.
 */
export function htmlMainText(html: string): string {
  const whole = htmlToPlainText(html);
  let article: { title?: string | null; content?: string | null } | null;
  try {
    const dom = parseDocument(html);
    withoutInertNodes(dom);
    const parser = new JSDOMParser();
    // JSDOMParser logs every markup error to the console; the errors are of no use here.
    parser.error = function (this: JSDOMParser, message: string) {
      this.errorState += `${message}\n`;
    };
    article = new Readability(parser.parse(render(dom, { selfClosingTags: true, emptyAttrs: true })), { keepClasses: false }).parse();
  } catch {
    return whole;
  }
  const main = article?.content ? htmlToPlainText(article.content) : '';
  if (main.trim() === '' || (main.length < MIN_MAIN_CHARACTERS && main.length < MIN_MAIN_SHARE * whole.length)) return whole;
  // Readability takes the headline out of the content; it goes back on top, as a heading.
  const title = article?.title?.replace(/\s+/g, ' ').trim() ?? '';
  return title !== '' && !main.trimStart().startsWith(title) ? `${title}\n\n${main}` : main;
}

interface MarkupNode {
  type: string;
  name?: string;
  children?: MarkupNode[];
}

const INERT = new Set(['script', 'style', 'noscript', 'template', 'svg', 'iframe', 'object', 'canvas']);

function withoutInertNodes(node: MarkupNode): void {
  if (!node.children) return;
  node.children = node.children.filter(
    (child) => child.type !== 'script' && child.type !== 'style' && child.type !== 'comment' && !(child.type === 'tag' && INERT.has(child.name!)),
  );
  for (const child of node.children) withoutInertNodes(child);
}

/**
 * Readable text of HTML as it stands, one block per paragraph, heading, list
 * item or table cell. Links keep their text and lose their URL; images are dropped.
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
