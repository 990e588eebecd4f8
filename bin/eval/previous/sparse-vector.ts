/** A sparse vector: term ids in ascending order with their weights. */
export interface SparseVector {
  ids: Int32Array;
  weights: Float64Array;
}

/**
 * TF-IDF vectors of sentences, L2-normalized so a dot product is the cosine.
 * Each sentence is a "document" for IDF; the smoothed form keeps a term that
 * is in every sentence at a positive weight, since sharing the document's
 * main topic is still a sign of a central sentence.
 */
export function tfidfVectors(termIds: readonly Int32Array[], vocabularySize: number): SparseVector[] {
  const df = new Int32Array(vocabularySize);
  for (const ids of termIds) for (const id of new Set(ids)) df[id]! += 1;
  const n = termIds.length;
  return termIds.map((ids) => {
    const tf = new Map<number, number>();
    for (const id of ids) tf.set(id, (tf.get(id) ?? 0) + 1);
    const sorted = [...tf.keys()].sort((a, b) => a - b);
    const weights = new Float64Array(sorted.length);
    let norm = 0;
    sorted.forEach((id, i) => {
      const w = (1 + Math.log(tf.get(id)!)) * (Math.log((1 + n) / (1 + df[id]!)) + 1);
      weights[i] = w;
      norm += w * w;
    });
    norm = Math.sqrt(norm);
    if (norm > 0) for (let i = 0; i < weights.length; i++) weights[i]! /= norm;
    return { ids: Int32Array.from(sorted), weights };
  });
}

export function dot(a: SparseVector, b: SparseVector): number {
  let i = 0;
  let j = 0;
  let sum = 0;
  while (i < a.ids.length && j < b.ids.length) {
    const x = a.ids[i]!;
    const y = b.ids[j]!;
    if (x === y) sum += a.weights[i++]! * b.weights[j++]!;
    else if (x < y) i++;
    else j++;
  }
  return sum;
}

/** The normalized sum of the vectors: what the document as a whole is about. */
export function centroid(vectors: readonly SparseVector[]): SparseVector {
  const sum = new Map<number, number>();
  for (const v of vectors) for (let i = 0; i < v.ids.length; i++) sum.set(v.ids[i]!, (sum.get(v.ids[i]!) ?? 0) + v.weights[i]!);
  const ids = Int32Array.from([...sum.keys()].sort((a, b) => a - b));
  const weights = Float64Array.from(ids, (id) => sum.get(id)!);
  const norm = Math.sqrt(weights.reduce((s, w) => s + w * w, 0));
  if (norm > 0) for (let i = 0; i < weights.length; i++) weights[i]! /= norm;
  return { ids, weights };
}
