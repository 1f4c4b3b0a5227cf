// A JSON answer of the local server (server.ts) and of the capture endpoints (receiver/capture/): one
// formatting for every endpoint (2-space indent, newline, bigint as a decimal string).
import type { ServerResponse } from 'node:http';

export function sendJson(res: ServerResponse, code: number, body: unknown): void {
  res.statusCode = code;
  res.setHeader('content-type', 'application/json');
  res.end(`${json(body)}\n`);
}

/**
 * Without a replacer first: a replacer is called for every value (at 1,000 entities /status took 1.3× as
 * long with one), and a BigInt makes JSON.stringify throw, so only a body holding one pays for it.
 */
function json(body: unknown): string {
  try {
    return JSON.stringify(body, null, 2);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    return JSON.stringify(body, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2);
  }
}
