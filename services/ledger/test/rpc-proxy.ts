/**
 * A JSON-RPC proxy in front of anvil that can misbehave on `eth_sendRawTransaction`, to play a
 * node that drops a transaction (answers with its hash, never forwards it) or refuses it (answers
 * with an error). Everything else is forwarded unchanged.
 */
import { createServer, type Server } from 'node:http';
import { keccak256, type Hex } from 'viem';

export type SendRawBehaviour = 'forward' | 'drop' | 'refuse';

export interface RpcProxy {
  readonly url: string;
  /** What to do with the next sendRawTransaction calls, in order; afterwards `forward`. */
  plan(...behaviours: SendRawBehaviour[]): void;
  /** Raw transactions seen, with what was done to them. */
  readonly seen: Array<{ hash: Hex; behaviour: SendRawBehaviour }>;
  close(): Promise<void>;
}

interface RpcRequest {
  id: unknown;
  method: string;
  params?: unknown[];
}

export async function startRpcProxy(target: string): Promise<RpcProxy> {
  const queue: SendRawBehaviour[] = [];
  const seen: RpcProxy['seen'] = [];
  const handle = async (request: RpcRequest): Promise<unknown> => {
    if (request.method === 'eth_sendRawTransaction') {
      const raw = request.params?.[0] as Hex;
      const behaviour = queue.shift() ?? 'forward';
      const hash = keccak256(raw);
      seen.push({ hash, behaviour });
      if (behaviour === 'drop') return { jsonrpc: '2.0', id: request.id, result: hash };
      if (behaviour === 'refuse') return { jsonrpc: '2.0', id: request.id, error: { code: -32000, message: 'node is overloaded, try again later' } };
    }
    const response = await fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) });
    return response.json();
  };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      void (async () => {
        try {
          const parsed = JSON.parse(body) as RpcRequest | RpcRequest[];
          const result = Array.isArray(parsed) ? await Promise.all(parsed.map(handle)) : await handle(parsed);
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result));
        } catch (error) {
          res.writeHead(502).end(String(error));
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    plan: (...behaviours) => queue.push(...behaviours),
    seen,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
