// Lets `node` run this repository's TypeScript sources directly (Node 24 strips types): a relative
// `./x.js` import resolves to `./x.ts` when only the .ts exists, and workspace packages resolve
// through their `longtail-source` export condition. Use: node --import ./services/ledger/bench/source-hooks.mjs file.ts
import { existsSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { fileURLToPath } from 'node:url';

registerHooks({
  resolve(specifier, context, next) {
    const ctx = { ...context, conditions: [...(context.conditions ?? []), 'longtail-source'] };
    if ((specifier.startsWith('./') || specifier.startsWith('../')) && specifier.endsWith('.js') && context.parentURL?.startsWith('file:')) {
      const url = new URL(specifier, context.parentURL);
      if (!existsSync(fileURLToPath(url))) {
        const ts = new URL(specifier.slice(0, -3) + '.ts', context.parentURL);
        if (existsSync(fileURLToPath(ts))) return next(ts.href, ctx);
      }
    }
    return next(specifier, ctx);
  },
});
