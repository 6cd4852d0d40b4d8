/** A tree that cannot be built as asked: a malformed account, an amount outside uint256, a duplicate. */
export class CumulativeTreeError extends Error {
  override readonly name = 'CumulativeTreeError';
}
