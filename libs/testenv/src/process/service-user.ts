/**
 * PostgreSQL refuses to run as root. When tests run as root (containers, CI images), server
 * processes are started as the `postgres` OS user instead; otherwise as the current user.
 */
import { readFileSync } from 'node:fs';

export interface OsUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

/** The user to run PostgreSQL as, or `undefined` for "the current user". */
export function postgresOsUser(): OsUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const name = process.env['LONGTAIL_TEST_PG_OS_USER'] ?? 'postgres';
  const user = lookupUser(name);
  if (!user) {
    throw new Error(
      `Running as root, and PostgreSQL refuses root: no OS user "${name}" to run it as ` +
        '(create one, or set LONGTAIL_TEST_PG_OS_USER, or set LONGTAIL_TEST_PG_URL to an existing server).',
    );
  }
  return user;
}

function lookupUser(name: string): OsUser | undefined {
  let passwd: string;
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of passwd.split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user === name && uid !== undefined && gid !== undefined) {
      return { name, uid: Number(uid), gid: Number(gid) };
    }
  }
  return undefined;
}
