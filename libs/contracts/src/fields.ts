/**
 * Field schemas shared by the event schemas: ids, money, hashes, addresses, counts, times. Each is
 * defined once so that a rule (say, "an amount is a decimal string of base units") is the same in
 * every event, in the generated JSON Schema, and in the gateway that validates user input with it.
 */
import { z } from 'zod';

/** Largest amount an EVM contract can hold: 2^256 - 1 (78 decimal digits). */
const UINT256_MAX = (1n << 256n) - 1n;

/**
 * Money: a non-negative integer number of base units (18 decimals, i.e. wei-like), as a decimal
 * string with no sign, no leading zeros (so one amount has one spelling, which keeps hashes
 * deterministic) and at most 2^256 - 1. Never a JS number.
 */
export const BaseUnitsSchema = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,77})$/, 'must be a decimal string of base units without sign or leading zeros')
  .refine((value) => !/^[0-9]+$/.test(value) || BigInt(value) <= UINT256_MAX, 'must not exceed 2^256 - 1')
  .describe('Amount in base units (18 decimals), decimal string without leading zeros, at most 2^256-1.');

/** An amount that must be greater than zero. */
export const PositiveBaseUnitsSchema = z
  .string()
  .regex(
    /^[1-9][0-9]{0,77}$/,
    'must be a decimal string of base units greater than 0, without sign or leading zeros',
  )
  .refine((value) => !/^[0-9]+$/.test(value) || BigInt(value) <= UINT256_MAX, 'must not exceed 2^256 - 1')
  .describe(
    'Amount in base units (18 decimals), decimal string without leading zeros, greater than 0, at most 2^256-1.',
  );

/**
 * An EVM account: `0x` + 40 hex digits. Any case is accepted (EIP-55 checksummed addresses
 * included, the checksum is not verified); the parsed value is lowercase, which is how producers
 * emit it and how accounts are compared and sorted.
 */
export const EvmAddressSchema = z
  .string()
  .regex(/^0x[0-9a-fA-F]{40}$/, 'must be an EVM address (0x + 40 hex digits)')
  .transform((value) => value.toLowerCase())
  .describe('EVM address, 0x + 40 hex digits; producers emit lowercase, parsers lowercase any input.');

/** A SHA-256 digest: 64 lowercase hex digits. */
export const Sha256HexSchema = z
  .string()
  .regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 digest (64 lowercase hex digits)')
  .describe('SHA-256 digest, 64 lowercase hex digits.');

/** A 32-byte EVM value (transaction hash, Merkle root): `0x` + 64 lowercase hex digits. */
export const Bytes32HexSchema = z
  .string()
  .regex(/^0x[0-9a-f]{64}$/, 'must be 0x + 64 lowercase hex digits')
  .describe('32 bytes as 0x + 64 lowercase hex digits.');

/** A count of tokens. */
export const TokenCountSchema = z.int().nonnegative().describe('Token count, non-negative integer.');

/** A duration in whole milliseconds. */
export const DurationMsSchema = z
  .int()
  .nonnegative()
  .describe('Duration in milliseconds, non-negative integer.');

/** A JetStream stream sequence (uint64 on the server; safe integers here). */
export const StreamSequenceSchema = z.int().nonnegative().describe('JetStream stream sequence number.');

/** ISO-8601 timestamp in UTC with a `Z` suffix, e.g. `2026-01-31T12:00:00.000Z`. */
export const UtcTimestampSchema = z.iso
  .datetime({ offset: false })
  .describe('ISO-8601 timestamp in UTC with a Z suffix, e.g. 2026-01-31T12:00:00.000Z.');

/**
 * A time-ordered UUID (RFC 9562 version 7), lowercase: ids are de-duplication keys, so one id has
 * one spelling.
 */
export const UuidV7Schema = z
  .string()
  .regex(
    /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    'must be a lowercase UUID version 7',
  )
  .describe('UUID version 7 (time-ordered), lowercase.');

/**
 * An opaque id made by a service (request, tenant, API key, worker, snapshot, contribution):
 * 1..128 characters of `[A-Za-z0-9._:-]`, starting with a letter or digit. No whitespace, no
 * slashes, so it is safe in logs, paths and headers.
 */
export const OpaqueIdSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/,
    'must be 1..128 characters of [A-Za-z0-9._:-] starting with a letter or digit',
  )
  .describe('Opaque id: 1..128 characters of [A-Za-z0-9._:-], starting with a letter or digit.');

/** One lowercase name segment: `[a-z0-9][a-z0-9._-]{0,63}`; `..` anywhere is rejected. */
const SEGMENT = '[a-z0-9][a-z0-9._-]{0,63}';
const NO_DOT_DOT = '(?!.*\\.\\.)';

/** A base model id, e.g. `llama-3-8b`: one lowercase segment. */
export const ModelIdSchema = z
  .string()
  .regex(new RegExp(`^${NO_DOT_DOT}${SEGMENT}$`), 'must be a lowercase model id ([a-z0-9._-], no "..")')
  .describe(
    'Base model id: lowercase [a-z0-9._-], starts with a letter or digit, at most 64 characters, no "..".',
  );

/**
 * An adapter id, `<base model>:<owner>/<name>`, e.g. `llama-3-8b:acme/legal-ur`. Every segment is
 * lowercase `[a-z0-9._-]` and starts with a letter or digit (so no leading `/`, no `.` or `..`
 * segment); `..` is rejected anywhere. This is what keeps an adapter name from reaching outside the
 * adapter store when it becomes a path.
 */
export const AdapterIdSchema = z
  .string()
  .regex(
    new RegExp(`^${NO_DOT_DOT}${SEGMENT}:${SEGMENT}/${SEGMENT}$`),
    'must be <base>:<owner>/<name> with lowercase [a-z0-9._-] segments and no ".."',
  )
  .describe(
    'Adapter id `<base>:<owner>/<name>`, e.g. `llama-3-8b:acme/legal-ur`; segments lowercase `[a-z0-9._-]`, no `..`.',
  );

/** A Datanet id, `<owner>/<name>`, same segment rules as adapter ids. */
export const DatanetIdSchema = z
  .string()
  .regex(
    new RegExp(`^${NO_DOT_DOT}${SEGMENT}/${SEGMENT}$`),
    'must be <owner>/<name> with lowercase [a-z0-9._-] segments and no ".."',
  )
  .describe('Datanet id `<owner>/<name>`; segments lowercase `[a-z0-9._-]`, no `..`.');

/**
 * A key in a NATS Object Store bucket (or a relative path under an operator-given root): segments
 * of `[A-Za-z0-9._-]` separated by single `/`, no segment starting with `.`, no leading or trailing
 * `/`, at most 512 characters.
 */
export const ObjectKeySchema = z
  .string()
  .max(512)
  .regex(
    /^[A-Za-z0-9_-][A-Za-z0-9._-]*(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/,
    'must be a relative key of [A-Za-z0-9._-] segments separated by "/", no segment starting with "."',
  )
  .describe(
    'Object key: relative, [A-Za-z0-9._-] segments separated by "/", no segment starting with ".", at most 512 characters.',
  );

/** A machine-readable error code, e.g. `engine_out_of_memory`. */
export const ErrorCodeSchema = z
  .string()
  .regex(/^[a-z][a-z0-9_]{0,63}$/, 'must be a snake_case code')
  .describe('Machine-readable snake_case code.');

/** Human-readable text of bounded length (1..max characters). Never secrets. */
export function boundedText(max: number, description: string): z.ZodString {
  return z.string().min(1).max(max).describe(description);
}
