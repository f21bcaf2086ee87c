// Ports for processes a test or a local launcher starts on this machine.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * The kernel's range for outgoing connections' local ports. A listening port taken from
 * it can be grabbed by any outgoing connection between the check and the bind (seen:
 * a node of an 8-node cluster failed with EADDRINUSE), so ports are handed out below it.
 */
function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(lo) && Number.isInteger(hi)) return [lo as number, hi as number];
  } catch {
    // not Linux: the IANA dynamic range
  }
  return [49152, 65535];
}

/** Ports this process handed out: a port not bound yet would pass the check again. */
const handedOut = new Set<number>();

function canListen(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/**
 * A TCP port that was free a moment ago on `host`, outside the kernel's range for
 * outgoing connections (ports 10000 and up, below that range), and not handed out
 * before by this process.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const [lo] = ephemeralRange();
  const from = 10_000;
  if (lo - from >= 1000) {
    for (let attempt = 0; attempt < 100; attempt++) {
      const port = from + Math.floor(Math.random() * (lo - from));
      if (handedOut.has(port) || !(await canListen(port, host))) continue;
      handedOut.add(port);
      return port;
    }
  }
  // no room below the range: let the kernel choose
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
