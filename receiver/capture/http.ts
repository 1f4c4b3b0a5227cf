// A JSON answer of the capture endpoints (/capture errors, /captures).
import type { ServerResponse } from 'node:http';

export function json(res: ServerResponse, code: number, body: unknown): void {
  res.statusCode = code;
  res.setHeader('content-type', 'application/json');
  res.end(`${JSON.stringify(body, null, 2)}\n`);
}
