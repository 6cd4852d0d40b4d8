/**
 * Keepalive frames on streamed replies: a slow handler served with `keepaliveMs` outlives a short
 * caller idle timeout (the frames are swallowed, never yielded), and one without keepalives does not.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNatsServer, type NatsServer } from '@longtail/testenv';
import {
  connectMessaging,
  RequestTimeout,
  requestStream,
  serveStream,
  type MessagingConnection,
  type StreamServer,
} from '../src/index.js';
import { sleep } from './support/events.js';

let server: NatsServer;
let conn: MessagingConnection;
const servers: StreamServer[] = [];

/** Two chunks 800 ms apart: longer than the caller's 300 ms idle timeout. */
async function* slow(): AsyncGenerator<string> {
  yield 'a';
  await sleep(800);
  yield 'b';
}

beforeAll(async () => {
  server = await startNatsServer();
  conn = await connectMessaging({ servers: server.url, name: 'keepalive-test' });
  servers.push(serveStream(conn, 'ka.with', slow, { keepaliveMs: 50 }));
  servers.push(serveStream(conn, 'ka.without', slow));
  await conn.nc.flush();
});
afterAll(async () => {
  for (const s of servers) await s.stop({ cancel: true });
  await conn?.close();
  await server?.stop();
});

async function collect(subject: string): Promise<string[]> {
  const out: string[] = [];
  for await (const chunk of requestStream<string>(conn, subject, {}, { idleTimeoutMs: 300 })) out.push(chunk);
  return out;
}

describe('streamed replies with keepalives', () => {
  it('keepalives keep a slow stream inside a short idle timeout and are not yielded', async () => {
    expect(await collect('ka.with')).toEqual(['a', 'b']);
  });

  it('without keepalives the same stream hits the idle timeout', async () => {
    await expect(collect('ka.without')).rejects.toBeInstanceOf(RequestTimeout);
  });
});
