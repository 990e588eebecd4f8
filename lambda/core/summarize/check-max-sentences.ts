import { permanent } from '../errors';

/** The most sentences a summary may ask for; more is not a summary. */
const MAX_SUMMARY_SENTENCES = 50;

export function checkMaxSentences(value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > MAX_SUMMARY_SENTENCES) {
    throw permanent(`maxSentences must be an integer from 1 to ${MAX_SUMMARY_SENTENCES}, got ${String(value)}`);
  }
  return value;
}
