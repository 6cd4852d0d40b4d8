/**
 * Failpoints: named places in the code where a test can make a process fail on purpose, the way
 * etcd and TiKV test crash recovery. Off unless `LONGTAIL_FAILPOINTS` names them, e.g.
 * `LONGTAIL_FAILPOINTS=attribution.projection.after-commit=exit` makes the process exit with
 * status 86 right after a projection commits and before the messages are acked. Each failpoint
 * fires once per process. Never set in production.
 */
const configured = new Map<string, 'exit'>();
for (const entry of (process.env['LONGTAIL_FAILPOINTS'] ?? '').split(',')) {
  const [name, action] = entry.split('=');
  if (name && action === 'exit') configured.set(name.trim(), 'exit');
}

export const FAILPOINT_EXIT_CODE = 86;

export function failpoint(name: string): void {
  if (configured.get(name) === 'exit') {
    configured.delete(name);
    process.stderr.write(`failpoint ${name}: exiting\n`);
    process.exit(FAILPOINT_EXIT_CODE);
  }
}
