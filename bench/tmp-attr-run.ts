import '/work/main/bench/attribution.ts';
process.on('beforeExit', () => console.log('PROF', JSON.stringify((globalThis as any).__prof)));
