/** A token id's vocabulary string, for both tokenizers (gpt2Tokenizer.ts, jsonTokenizer.ts). */
import { HeadlightError } from '../../common/errors.js';

/** pieces[id]; an id outside the vocabulary gets a HeadlightError naming the valid range. */
export function vocabPiece(pieces: readonly string[], id: number, vocabSize: number): string {
  const piece = pieces[id];
  if (piece === undefined) {
    throw new HeadlightError('tokenizer-bad-id', `Token id ${id} is not in the vocabulary (ids 0 to ${vocabSize - 1}).`, 'The ids must come from the same tokenizer as the model.');
  }
  return piece;
}
