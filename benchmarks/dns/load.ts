// DNS load at a fixed rate over UDP from one socket (run inside the client netns): `A a.ok.podnet`
// queries with consecutive ids, paced in 1 ms slots. Prints one JSON line: sent, answered, by rcode.
//   node benchmarks/dns/load.ts SERVER RATE SECONDS
import dgram from 'node:dgram';

const [server = '127.0.0.1', rateArg = '5000', secondsArg = '5'] = process.argv.slice(2);
const rate = Number(rateArg);
const seconds = Number(secondsArg);
const name = Buffer.from([1, 97, 2, 111, 107, 6, 112, 111, 100, 110, 101, 116, 0]); // a.ok.podnet
const query = Buffer.concat([
  Buffer.from([0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]),
  name,
  Buffer.from([0, 1, 0, 1]),
]);
const sock = dgram.createSocket(server.includes(':') ? 'udp6' : 'udp4');
const rcodes: Record<number, number> = {};
let sent = 0;
let answered = 0;
sock.on('message', (m) => {
  answered++;
  const rc = (m[3] ?? 0) & 0xf;
  rcodes[rc] = (rcodes[rc] ?? 0) + 1;
});
sock.bind(0, () => {
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const tick = () => {
    const now = performance.now();
    const due = Math.min(Math.floor(((now - t0) / 1000) * rate), Math.floor(seconds * rate));
    while (sent < due) {
      const q = Buffer.from(query); // send() is asynchronous: each query its own buffer (its own id)
      q.writeUInt16BE(sent & 0xffff, 0);
      sock.send(q, 53, server);
      sent++;
    }
    if (now < end) setTimeout(tick, 1);
    else
      setTimeout(() => {
        process.stdout.write(`${JSON.stringify({ sent, answered, rcodes })}\n`);
        sock.close();
      }, 500);
  };
  tick();
});
