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
