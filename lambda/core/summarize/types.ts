export interface DocumentInput {
  content: Buffer;
  /** A media type, parameters allowed (`text/plain; charset=utf-8`). */
  contentType: string;
  filename?: string | null;
}

export interface SummaryOptions {
  maxSentences: number;
  signal?: AbortSignal;
}

export interface TextStats {
  /** Sentences with at least one word, headings and list items included. */
  sentenceCount: number;
  /** Word-like segments as `Intl.Segmenter` finds them: `don't` is one word, `well-known` two, `1822` one. */
  wordCount: number;
  /** Unicode code points of the extracted, whitespace-normalized text. */
  characterCount: number;
  /** At 200 words a minute, rounded up: any non-empty document takes at least 1 minute. */
  readingTimeMinutes: number;
}

export interface SummaryResult {
  summary: string;
  /** Extractive: the chosen sentences, verbatim and in document order. Bedrock: the model's sentences. */
  sentences: string[];
  /**
   * Up to 8 topics, lowercase, best first: names and multi-word terms
   * ("harbor bridge") as well as single words; no stopwords of the document's language.
   */
  keywords: string[];
  stats: TextStats;
  summarizer: 'extractive' | 'bedrock';
  model?: string;
  /** The document's language as detected (ISO 639-1, `und` when undetermined). */
  language?: string;
}

export interface Summarizer {
  readonly name: 'extractive' | 'bedrock';
  summarize(doc: DocumentInput, opts: SummaryOptions): Promise<SummaryResult>;
}
