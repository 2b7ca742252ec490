/**
 * Value-weighted attention, α_j·n_j / Σ_k α_k·n_k with n_j = ‖v_j·W_O^h‖ (the norm of what key j adds through the
 * head): attention weighed by how much each key actually moves the residual stream, normalized so a row reads like
 * attention. Pure arithmetic; the engine, the CLI and the webview all weigh rows with these.
 */

/** Adds α_j·n_j to `into[j]` for every key j of the row and returns their sum (rows of several heads add up). */
export function addValueWeighted(probs: ArrayLike<number>, norms: ArrayLike<number>, into: Float32Array): number {
  let sum = 0;
  for (let j = 0; j < probs.length; j++) {
    const w = probs[j] * norms[j];
    into[j] += w;
    sum += w;
  }
  return sum;
}

/** Divides a row's weights by their total so they sum to 1 (a zero total leaves zeros). */
export function normalizeRow(row: Float32Array, total: number): Float32Array {
  if (total > 0) for (let j = 0; j < row.length; j++) row[j] /= total;
  return row;
}

/** One head's value-weighted row: α_j·n_j normalized to sum to 1 (zeros stay zeros). */
export function valueWeighted(probs: ArrayLike<number>, norms: ArrayLike<number>, out = new Float32Array(probs.length)): Float32Array {
  out.fill(0);
  return normalizeRow(out, addValueWeighted(probs, norms, out));
}
