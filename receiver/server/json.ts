// A JSON answer of the local server (server.ts) and of the capture endpoints (receiver/capture/): one
// formatting for every endpoint (2-space indent, newline, bigint as a decimal string).
import type { ServerResponse } from 'node:http';

export function sendJson(res: ServerResponse, code: number, body: unknown): void {
  res.statusCode = code;
  res.setHeader('content-type', 'application/json');
  res.end(`${JSON.stringify(body, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
}
