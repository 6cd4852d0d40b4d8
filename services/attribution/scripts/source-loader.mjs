// Runs the TypeScript sources directly (no build): `node --conditions=longtail-source --import ./services/attribution/scripts/source-loader.mjs <file.ts>`.
// Transforms .ts with SWC, emitting decorator metadata like the test runner does (Nest needs it).
import { register } from 'node:module';

register('./source-loader-hooks.mjs', import.meta.url);
