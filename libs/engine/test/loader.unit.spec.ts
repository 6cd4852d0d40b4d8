/** Without the built addon, opening an engine fails with a message that says how to build it. */
import { afterEach, describe, expect, it, vi } from 'vitest';

describe('addon loading', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.resetModules();
  });

  it('a missing addon is reported with the build command', async () => {
    vi.stubEnv('LONGTAIL_ENGINE_ADDON', '/nonexistent/longtail_engine.node');
    vi.resetModules();
    const { Engine, ADDON_PATH } = await import('@longtail/engine-node');
    expect(ADDON_PATH).toBe('/nonexistent/longtail_engine.node');
    await expect(Engine.open('/tmp/model')).rejects.toThrow(
      /\/nonexistent\/longtail_engine\.node does not exist\): run `npm run build:native`/,
    );
  });

  it('by default the addon is looked for in native/build/addon', async () => {
    vi.stubEnv('LONGTAIL_ENGINE_ADDON', undefined);
    vi.resetModules();
    const { ADDON_PATH } = await import('@longtail/engine-node');
    expect(ADDON_PATH).toMatch(/native\/build\/addon\/longtail_engine\.node$/);
  });
});
