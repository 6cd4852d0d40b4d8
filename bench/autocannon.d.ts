/** The part of autocannon's programmatic API (v8/v9, no published types) that bench/serving.ts uses. */
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';

  interface Options {
    url: string;
    method?: string;
    connections?: number;
    pipelining?: number;
    /** Seconds. */
    duration?: number;
    headers?: Record<string, string>;
    body?: string;
    requests?: Array<{ onResponse?: (status: number, body: string, context: object, headers: object) => void }>;
  }

  interface Result {
    readonly requests: { readonly total: number; readonly average: number; readonly sent: number };
    readonly non2xx: number;
    readonly errors: number;
    readonly timeouts: number;
  }

  /** Emits `response` (client, statusCode, bytes, responseTime in ms with µs resolution) and resolves with the totals. */
  type Instance = EventEmitter & PromiseLike<Result>;

  function autocannon(options: Options): Instance;
  export default autocannon;
}
