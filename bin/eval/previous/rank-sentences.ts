import type { AnalyzedSentence } from './analyze-text';
import { checkpoint } from './checkpoint';
import { pageRank } from './page-rank';
import { centroid, dot, tfidfVectors, type SparseVector } from './sparse-vector';

/**
 * The similarity graph is quadratic in its nodes; past this many candidate
 * sentences only those closest to the document's centroid take part. That
 * keeps a 2 MB document to a few hundred thousand sparse dot products while
 * still letting a sentence from anywhere in it win.
 */
const MAX_GRAPH_SENTENCES = 500;
/** Sentences this similar say the same thing; a summary carries only one of them. */
const DUPLICATE_SIMILARITY = 0.8;
const ROWS_PER_SLICE = 50;

/**
 * TextRank: candidate sentences are nodes, TF-IDF cosine similarity weighs
 * the edges, PageRank (damping 0.85, to convergence) scores them. The random
 * surfer restarts preferably near the start of the document, a mild lead
 * bias: news, reports and essays state their point early. Returns up to
 * `count` indices into `sentences`, in document order, skipping
 * near-duplicates of sentences already chosen unless too few are left.
 */
export async function rankSentences(
  sentences: readonly AnalyzedSentence[],
  candidates: readonly number[],
  count: number,
  termCount: number,
  signal?: AbortSignal,
): Promise<number[]> {
  if (candidates.length <= count) return [...candidates];
  const vectors = tfidfVectors(sentences.map((s) => s.termIds), termCount);
  await checkpoint(signal);
  const nodes = mostCentral(candidates, vectors, MAX_GRAPH_SENTENCES);
  await checkpoint(signal);

  const edges: Array<Array<[number, number]>> = nodes.map(() => []);
  for (let a = 0; a < nodes.length; a++) {
    if (a % ROWS_PER_SLICE === 0) await checkpoint(signal);
    for (let b = a + 1; b < nodes.length; b++) {
      const similarity = dot(vectors[nodes[a]!]!, vectors[nodes[b]!]!);
      if (similarity <= 0) continue;
      edges[a]!.push([b, similarity]);
      edges[b]!.push([a, similarity]);
    }
  }
  const scores = pageRank(edges, { damping: 0.85, tolerance: 1e-6, maxIterations: 200, teleport: leadBias(nodes.length) });
  await checkpoint(signal);

  const order = nodes.map((index, i) => ({ index, score: scores[i]! })).sort((x, y) => y.score - x.score || x.index - y.index);
  return pickDistinct(order.map((o) => o.index), vectors, count).sort((a, b) => a - b);
}

function mostCentral(candidates: readonly number[], vectors: readonly SparseVector[], limit: number): number[] {
  if (candidates.length <= limit) return [...candidates];
  const center = centroid(candidates.map((i) => vectors[i]!));
  return candidates
    .map((index) => ({ index, closeness: dot(vectors[index]!, center) }))
    .sort((a, b) => b.closeness - a.closeness || a.index - b.index)
    .slice(0, limit)
    .map((c) => c.index)
    .sort((a, b) => a - b);
}

/** Restart weights falling from 2 to 1 over the first tenth of the nodes (at least 10), then flat. */
function leadBias(n: number): number[] {
  const span = Math.max(10, n / 10);
  return Array.from({ length: n }, (_, i) => 1 + Math.max(0, 1 - i / span));
}

function pickDistinct(ranked: readonly number[], vectors: readonly SparseVector[], count: number): number[] {
  const chosen: number[] = [];
  const skipped: number[] = [];
  for (const index of ranked) {
    if (chosen.length === count) break;
    if (chosen.some((c) => dot(vectors[c]!, vectors[index]!) > DUPLICATE_SIMILARITY)) skipped.push(index);
    else chosen.push(index);
  }
  return [...chosen, ...skipped.slice(0, count - chosen.length)];
}
