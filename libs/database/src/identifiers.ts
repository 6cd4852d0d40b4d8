/**
 * Schema names reach PostgreSQL outside bound parameters (the connection's `search_path`, DDL),
 * so they are restricted to plain lower-case identifiers that need no quoting.
 */
import { InvalidIdentifierError } from './errors.js';

const PLAIN_IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

export function assertIdentifier(kind: string, value: string): string {
  if (typeof value !== 'string' || !PLAIN_IDENTIFIER.test(value))
    throw new InvalidIdentifierError(kind, value);
  return value;
}
