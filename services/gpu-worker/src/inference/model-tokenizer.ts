/**
 * The tokenizer of a model folder: `tokenizer.json` (read by @huggingface/tokenizers) and
 * `tokenizer_config.json` (its chat template, rendered by @huggingface/jinja, and its special
 * tokens). The ids it produces are what the engine consumes; its stop ids are the model's
 * end-of-sequence / end-of-turn tokens (from `generation_config.json`, `config.json` and the
 * tokenizer config, merged).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import type { ChatMessage } from '@longtail/contracts';

interface TokenizerConfig {
  chat_template?: string | Array<{ name: string; template: string }>;
  bos_token?: string | { content: string };
  eos_token?: string | { content: string };
}

/** Byte-level decoding options used everywhere, so that streamed text equals a one-shot decode. */
export const DECODE_OPTIONS = { skip_special_tokens: true, clean_up_tokenization_spaces: false } as const;

const tokenText = (t: string | { content: string } | undefined): string | undefined =>
  typeof t === 'string' ? t : t?.content;

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

const asIds = (v: unknown): number[] =>
  typeof v === 'number' ? [v] : Array.isArray(v) ? v.filter((x): x is number => typeof x === 'number') : [];

export class ModelTokenizer {
  private constructor(
    private readonly tokenizer: Tokenizer,
    private readonly chatTemplate: Template | undefined,
    private readonly bosToken: string,
    private readonly eosToken: string,
    /** End-of-sequence and end-of-turn ids: the engine stops on them and does not emit them. */
    readonly stopTokenIds: readonly number[],
  ) {}

  /** Reads the tokenizer files of `modelDir`; throws when `tokenizer.json` is missing or invalid. */
  static async load(modelDir: string): Promise<ModelTokenizer> {
    const json = await readJson<object>(join(modelDir, 'tokenizer.json'));
    if (json === undefined) throw new Error(`${modelDir}/tokenizer.json is missing`);
    const config = (await readJson<TokenizerConfig>(join(modelDir, 'tokenizer_config.json'))) ?? {};
    const tokenizer = new Tokenizer(json, config);
    const rawTemplate = Array.isArray(config.chat_template)
      ? config.chat_template.find((t) => t.name === 'default')?.template
      : config.chat_template;
    const generation = await readJson<{ eos_token_id?: unknown }>(join(modelDir, 'generation_config.json'));
    const modelConfig = await readJson<{ eos_token_id?: unknown }>(join(modelDir, 'config.json'));
    const eosToken = tokenText(config.eos_token) ?? '';
    const stop = new Set([...asIds(generation?.eos_token_id), ...asIds(modelConfig?.eos_token_id)]);
    const eosId = eosToken ? tokenizer.token_to_id(eosToken) : undefined;
    if (eosId !== undefined) stop.add(eosId);
    // Llama 3's end of turn: a chat reply ends with it even when the configs forget it.
    const eot = tokenizer.token_to_id('<|eot_id|>');
    if (eot !== undefined) stop.add(eot);
    return new ModelTokenizer(
      tokenizer,
      rawTemplate ? new Template(rawTemplate) : undefined,
      tokenText(config.bos_token) ?? '',
      eosToken,
      [...stop].sort((a, b) => a - b),
    );
  }

  get hasChatTemplate(): boolean {
    return this.chatTemplate !== undefined;
  }

  /** A completion prompt: the text with the tokenizer's own special tokens (BOS for Llama 3). */
  encodeText(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: true }).ids;
  }

  /** A chat prompt: the chat template with the generation prompt; the template places BOS itself. */
  encodeChat(messages: readonly ChatMessage[]): number[] {
    if (!this.chatTemplate) throw new Error('the model folder has no chat template');
    const text = this.chatTemplate.render({
      messages,
      add_generation_prompt: true,
      bos_token: this.bosToken,
      eos_token: this.eosToken,
    });
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: readonly number[]): string {
    return ids.length === 0 ? '' : this.tokenizer.decode(ids as number[], DECODE_OPTIONS);
  }
}
