/**
 * What a streamed request costs on the wire (the serving hot path, bench/serving.ts): a caller's
 * requests share one reply subscription and a server's requests one cancel subscription, so a
 * request adds no subscription on either side; a handler's frames of one event-loop turn are one
 * message; frames spread over turns still arrive in order; a cancel still reaches the handler.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNatsServer, type NatsServer } from '@longtail/testenv';
import { createInbox, headers as natsHeaders, type Msg } from '@nats-io/nats-core';
import {
  CANCEL_SUBJECT_HEADER,
  connectMessaging,
  requestStream,
  serveStream,
  type MessagingConnection,
  type StreamServer,
} from '../src/index.js';
import { sleep } from './support/events.js';

let server: NatsServer;
let handlerConn: MessagingConnection;
let callerConn: MessagingConnection;
const servers: StreamServer[] = [];
let cancelled = 0;

beforeAll(async () => {
  server = await startNatsServer();
  handlerConn = await connectMessaging({ servers: server.url, name: 'wire-handler' });
  callerConn = await connectMessaging({ servers: server.url, name: 'wire-caller' });
  // A 1-token reply: its token chunk and the final chunk are produced in one turn.
  servers.push(
    serveStream(handlerConn, 'wire.one-turn', async function* () {
      await new Promise((r) => setImmediate(r));
      yield { text: 'x', tokens: 1 };
      yield { text: '', tokens: 0, finish: 'length' };
    }),
  );
  servers.push(
    serveStream(handlerConn, 'wire.spread', async function* () {
      for (let i = 0; i < 5; i++) {
        yield i;
        await sleep(5);
      }
    }),
  );
  servers.push(
    serveStream(handlerConn, 'wire.endless', async function* (_p, meta) {
      try {
        for (let i = 0; !meta.signal.aborted; i++) {
          yield i;
          await sleep(5);
        }
      } finally {
        cancelled++;
      }
    }),
  );
  servers.push(
    serveStream(handlerConn, 'wire.after', async function* (_p, meta) {
      try {
        yield 'reply';
      } finally {
        meta.afterReply(() => handlerConn.nc.publish('wire.after.done', 'event'));
      }
    }),
  );
  await handlerConn.nc.flush();
});
afterAll(async () => {
  for (const s of servers) await s.stop({ cancel: true });
  await callerConn?.close();
  await handlerConn?.close();
  await server?.stop();
});

/** Subscriptions nats-server holds for the connection named `name` (monitoring `/connz`). */
async function serverSubscriptions(name: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${server.monitorPort}/connz?subs=1`);
  const connz = (await res.json()) as { connections: Array<{ name?: string; subscriptions: number }> };
  return connz.connections.find((c) => c.name === name)?.subscriptions ?? -1;
}

async function collect<T>(subject: string): Promise<T[]> {
  const out: T[] = [];
  for await (const chunk of requestStream<T>(callerConn, subject, {})) out.push(chunk);
  return out;
}

describe('streamed requests on the wire', () => {
  it('a reply produced in one turn is one message', async () => {
    await collect('wire.one-turn'); // the first request opens the shared reply subscription
    const before = handlerConn.nc.stats().outMsgs;
    for (let i = 0; i < 10; i++)
      expect(await collect('wire.one-turn')).toEqual([
        { text: 'x', tokens: 1 },
        { text: '', tokens: 0, finish: 'length' },
      ]);
    await handlerConn.nc.flush();
    // Ten replies of two chunks and `end` each: ten messages, not thirty.
    expect(handlerConn.nc.stats().outMsgs - before).toBe(10);
  });

  it('work handed to afterReply runs once per request, after the reply', async () => {
    let done = 0;
    const sub = callerConn.nc.subscribe('wire.after.done', { callback: () => void done++ });
    await callerConn.nc.flush();
    const before = handlerConn.nc.stats().outMsgs;
    for (let i = 0; i < 5; i++) expect(await collect('wire.after')).toEqual(['reply']);
    await expect.poll(() => done, { timeout: 2000 }).toBe(5);
    // Per request: the reply (chunk + end in one message) and the after-reply message.
    expect(handlerConn.nc.stats().outMsgs - before).toBe(10);
    sub.unsubscribe();
  });

  it('an older caller (own cancel subject, no batch header) gets one frame a message and can cancel', async () => {
    const inbox = createInbox();
    const frames: unknown[] = [];
    const sub = callerConn.nc.subscribe(inbox, {
      callback: (_e, m: Msg) => void frames.push(JSON.parse(new TextDecoder().decode(m.data))),
    });
    const h = natsHeaders();
    h.set(CANCEL_SUBJECT_HEADER, `${inbox}.cancel`);
    callerConn.nc.publish('wire.one-turn', '{}', { reply: inbox, headers: h });
    await expect.poll(() => frames.length, { timeout: 2000 }).toBe(3);
    expect(frames).toEqual([
      { t: 'chunk', v: { text: 'x', tokens: 1 } },
      { t: 'chunk', v: { text: '', tokens: 0, finish: 'length' } },
      { t: 'end' },
    ]);
    sub.unsubscribe();

    const before = cancelled;
    const endless = createInbox();
    const seen: unknown[] = [];
    const sub2 = callerConn.nc.subscribe(endless, { callback: (_e, m: Msg) => void seen.push(m.data) });
    const h2 = natsHeaders();
    h2.set(CANCEL_SUBJECT_HEADER, `${endless}.cancel`);
    callerConn.nc.publish('wire.endless', '{}', { reply: endless, headers: h2 });
    await expect.poll(() => seen.length, { timeout: 2000 }).toBeGreaterThan(1);
    callerConn.nc.publish(`${endless}.cancel`);
    await expect.poll(() => cancelled, { timeout: 2000 }).toBe(before + 1);
    sub2.unsubscribe();
  });

  it('frames spread over several turns arrive in order, and concurrent requests do not mix', async () => {
    const replies = await Promise.all(Array.from({ length: 8 }, () => collect<number>('wire.spread')));
    for (const r of replies) expect(r).toEqual([0, 1, 2, 3, 4]);
  });

  it('a request in flight adds no subscription on either side; breaking out of the loop cancels the handler', async () => {
    await collect('wire.one-turn');
    await callerConn.nc.flush();
    const idle = {
      caller: await serverSubscriptions('wire-caller'),
      handler: await serverSubscriptions('wire-handler'),
    };
    const before = cancelled;
    for await (const i of requestStream<number>(callerConn, 'wire.endless', {})) {
      if (i === 1)
        expect({
          caller: await serverSubscriptions('wire-caller'),
          handler: await serverSubscriptions('wire-handler'),
        }).toEqual(idle);
      if (i === 3) break;
    }
    await expect.poll(() => cancelled, { timeout: 2000 }).toBe(before + 1);
  });
});
