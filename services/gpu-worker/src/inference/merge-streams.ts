/**
 * Interleaves async iterables in arrival order (the n choices of one request). Leaving early, or
 * an error in one source, returns the others.
 */
export async function* mergeStreams<T>(
  sources: readonly AsyncIterable<T>[],
): AsyncGenerator<T, void, undefined> {
  const iterators = sources.map((s) => s[Symbol.asyncIterator]());
  const next = (i: number) => iterators[i]!.next().then((result) => ({ i, result }));
  const pending = new Map(iterators.map((_, i) => [i, next(i)] as const));
  try {
    while (pending.size > 0) {
      const { i, result } = await Promise.race(pending.values());
      if (result.done === true) {
        pending.delete(i);
        continue;
      }
      pending.set(i, next(i));
      yield result.value;
    }
  } finally {
    for (const [i, p] of pending) {
      p.catch(() => undefined);
      void iterators[i]!.return?.()?.catch(() => undefined);
    }
  }
}
