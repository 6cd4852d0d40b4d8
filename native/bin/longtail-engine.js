#!/usr/bin/env node
// Runs the native longtail-engine binary with the same arguments, stdio and exit status.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const binary = join(dirname(fileURLToPath(import.meta.url)), '..', 'build', 'release', 'longtail-engine');
if (!existsSync(binary)) {
  process.stderr.write(
    `error: ${binary} is not built; run npm run build (in native/, or npm run build:native at the root)\n`,
  );
  process.exit(1);
}
const child = spawn(binary, process.argv.slice(2), { stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('error', (err) => {
  process.stderr.write(`error: cannot start ${binary}: ${err.message}\n`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  if (signal) process.kill(process.pid, signal);
  else process.exit(code ?? 1);
});
