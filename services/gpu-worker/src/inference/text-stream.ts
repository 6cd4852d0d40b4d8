/**
 * Turning a stream of token ids into a stream of text that a client can show as it comes:
 *
 * - `IncrementalDetokenizer`: a token can end in the middle of a UTF-8 character (byte-level BPE),
 *   and a token's text can depend on its neighbours. It decodes a short window of recent tokens
 *   and emits the new suffix only once it is stable (longer than before and not ending in U+FFFD),
 *   so the concatenated output equals decoding all tokens at once.
 * - `StopStringFilter`: stop strings are matched on the text, across token boundaries. Text that
 *   could be the start of a stop string is held back until it is known not to be one, so a client
 *   never sees a partial stop string.
 *
 * Both are pure: no I/O, no engine.
 */

export interface Decoder {
  decode(ids: readonly number[]): string;
}

const REPLACEMENT = '\uFFFD';

export class IncrementalDetokenizer {
  readonly #decoder: Decoder;
  readonly #ids: number[] = [];
  /** Start of the window decoded as context (tokens before it are final). */
  #prefixOffset = 0;
  /** End of the tokens whose text has been emitted. */
  #readOffset = 0;

  constructor(decoder: Decoder) {
    this.#decoder = decoder;
  }

  /** Adds a token; returns the text that became stable ('' when none did yet). */
  push(id: number): string {
    this.#ids.push(id);
    const window = this.#ids.slice(this.#prefixOffset);
    const prefixText = this.#decoder.decode(this.#ids.slice(this.#prefixOffset, this.#readOffset));
    const text = this.#decoder.decode(window);
    if (text.length > prefixText.length && !text.endsWith(REPLACEMENT)) {
      this.#prefixOffset = this.#readOffset;
      this.#readOffset = this.#ids.length;
      return text.slice(prefixText.length);
    }
    return '';
  }

  /** Text still pending at the end (possibly with U+FFFD for an incomplete character). */
  flush(): string {
    const prefixText = this.#decoder.decode(this.#ids.slice(this.#prefixOffset, this.#readOffset));
    const text = this.#decoder.decode(this.#ids.slice(this.#prefixOffset));
    this.#prefixOffset = this.#readOffset = this.#ids.length;
    return text.length > prefixText.length ? text.slice(prefixText.length) : '';
  }
}

export interface FilteredText {
  /** Text that may be sent now. */
  readonly text: string;
  /** True when a stop string was found: `text` ends just before it and generation should end. */
  readonly stopped: boolean;
}

export class StopStringFilter {
  readonly #stops: readonly string[];
  /** Text received and not yet released: at most `longest - 1` characters between calls. */
  #pending = '';
  #stopped = false;

  constructor(stops: readonly string[]) {
    this.#stops = stops.filter((s) => s.length > 0);
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  push(text: string): FilteredText {
    if (this.#stopped) return { text: '', stopped: true };
    if (this.#stops.length === 0) return { text, stopped: false };
    const buffer = this.#pending + text;
    let cut = -1;
    for (const stop of this.#stops) {
      const at = buffer.indexOf(stop);
      if (at !== -1 && (cut === -1 || at < cut)) cut = at;
    }
    if (cut !== -1) {
      this.#stopped = true;
      this.#pending = '';
      return { text: buffer.slice(0, cut), stopped: true };
    }
    // Hold back the longest suffix that is a proper prefix of some stop string.
    let hold = 0;
    for (const stop of this.#stops) {
      for (let k = Math.min(stop.length - 1, buffer.length); k > hold; k--) {
        if (buffer.endsWith(stop.slice(0, k))) {
          hold = k;
          break;
        }
      }
    }
    this.#pending = buffer.slice(buffer.length - hold);
    return { text: buffer.slice(0, buffer.length - hold), stopped: false };
  }

  /** At the end of generation: what was held back is not a stop string after all. */
  flush(): string {
    const rest = this.#stopped ? '' : this.#pending;
    this.#pending = '';
    return rest;
  }
}
