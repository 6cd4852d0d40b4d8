// Runs the TypeScript sources directly (no build): `node --conditions=longtail-source --import ./bench/attribution-loader.mjs <file.ts>`.
// Transforms .ts with SWC, emitting decorator metadata like the test runner does (Nest needs it).
import { register } from 'node:module';

register('./attribution-loader-hooks.mjs', import.meta.url);
