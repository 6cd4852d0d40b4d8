/**
 * The one error this package throws or returns: an event, a subject token or a set of totals broke
 * the contract. `code` says which rule, `issues` say where (paths into the envelope, never the
 * offending values, so that a violation can be logged without leaking what the event carried), and
 * `cause` keeps the underlying error (a `ZodError`, a `SyntaxError`) for an operator.
 */
import type { z } from 'zod';

/** Every way an event (or a value that ends up in one) can break the contract. */
export const CONTRACT_VIOLATION_CODES = {
  /** The bytes are not UTF-8 JSON. */
  MalformedJson: 'malformed_json',
  /** The envelope itself is wrong (missing id, bad timestamp, extra keys, ...). */
  InvalidEnvelope: 'invalid_envelope',
  /** `type` names no event this version of the contracts knows. */
  UnknownType: 'unknown_type',
  /** `type` is known but `version` is not (e.g. a producer newer than this consumer). */
  UnknownVersion: 'unknown_version',
  /** The envelope is fine but `data` fails the schema of its type and version. */
  InvalidData: 'invalid_data',
  /** A string cannot be made into (or read back from) a NATS subject token. */
  InvalidSubjectToken: 'invalid_subject_token',
} as const;

export type ContractViolationCode = (typeof CONTRACT_VIOLATION_CODES)[keyof typeof CONTRACT_VIOLATION_CODES];

/** One broken rule: where (a path such as `data.trainedOn[0].mixWeightBps`) and what. */
export interface ContractIssue {
  readonly path: string;
  readonly code: string;
  readonly message: string;
}

export interface ContractViolationDetails {
  readonly eventType?: string | null;
  readonly eventVersion?: number | null;
  readonly issues?: readonly ContractIssue[];
  readonly cause?: unknown;
}

export class ContractViolation extends Error {
  override readonly name = 'ContractViolation';
  readonly code: ContractViolationCode;
  /** The event type the violation is about, when it could be read. */
  readonly eventType: string | null;
  /** The schema version the violation is about, when it could be read. */
  readonly eventVersion: number | null;
  readonly issues: readonly ContractIssue[];

  constructor(code: ContractViolationCode, summary: string, details: ContractViolationDetails = {}) {
    const eventType = details.eventType ?? null;
    const eventVersion = details.eventVersion ?? null;
    const issues = Object.freeze([...(details.issues ?? [])]);
    super(formatMessage(code, summary, eventType, eventVersion, issues), { cause: details.cause });
    this.code = code;
    this.eventType = eventType;
    this.eventVersion = eventVersion;
    this.issues = issues;
  }
}

export function isContractViolation(error: unknown): error is ContractViolation {
  return error instanceof ContractViolation;
}

/** Turns zod issues into contract issues; `prefix` is prepended to every path. */
export function issuesFromZod(error: z.ZodError, prefix: readonly PropertyKey[] = []): ContractIssue[] {
  return error.issues.map((issue) => ({
    path: formatPath([...prefix, ...issue.path]),
    code: issue.code,
    message: issue.message,
  }));
}

/** `['data', 'totals', 0, 'amount']` → `data.totals[0].amount`; the root is `(root)`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? String(segment) : `.${String(segment)}`;
  }
  return out === '' ? '(root)' : out;
}

function formatMessage(
  code: ContractViolationCode,
  summary: string,
  eventType: string | null,
  eventVersion: number | null,
  issues: readonly ContractIssue[],
): string {
  const subject =
    eventType === null ? '' : `${eventType}${eventVersion === null ? '' : ` v${eventVersion}`}: `;
  const shown = issues.slice(0, 10).map((issue) => `${issue.path}: ${issue.message}`);
  if (issues.length > shown.length) shown.push(`... ${issues.length - shown.length} more`);
  return `${subject}${summary} (${code})${shown.length > 0 ? `; ${shown.join('; ')}` : ''}`;
}
