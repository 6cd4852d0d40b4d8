/**
 * One Vitest configuration, three tiers chosen by file suffix:
 *   *.unit.spec.ts  pure code, no servers
 *   *.int.spec.ts   real NATS / PostgreSQL / engine started by @longtail/testenv
 *   *.e2e.spec.ts   whole services wired together
 * Sources run through SWC so that Nest's decorator metadata is emitted; workspace packages
 * resolve to their TypeScript sources through the `longtail-source` export condition.
 */
import swc from 'unplugin-swc';
import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';

const swcPlugin = swc.vite({
  jsc: {
    target: 'es2023',
    parser: { syntax: 'typescript', decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true },
  },
});

const tier = (name: string, timeoutMs: number): TestProjectInlineConfiguration => ({
  extends: true,
  test: {
    name,
    include: [`{libs,services,native,bench,e2e}/**/*.${name}.spec.ts`],
    testTimeout: timeoutMs,
    hookTimeout: timeoutMs,
  },
});

export default defineConfig({
  plugins: [swcPlugin],
  resolve: { conditions: ['longtail-source'] },
  ssr: { resolve: { conditions: ['longtail-source'] } },
  test: {
    exclude: ['**/node_modules/**', '**/dist/**'],
    pool: 'forks',
    maxWorkers: 2,
    globalSetup: ['libs/testenv/src/global-setup.ts'],
    projects: [tier('unit', 10_000), tier('int', 120_000), tier('e2e', 300_000)],
  },
});
