import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answersOk, pollUntil } from '../src/poll.js';

describe('pollUntil', () => {
  it('returns done at the first true check', async () => {
    let calls = 0;
    expect(await pollUntil(async () => ++calls === 3, { deadline: Date.now() + 5000, intervalMs: 1 })).toBe('done');
    expect(calls).toBe(3);
  });

  it('counts a throwing check as false, and times out after the deadline', async () => {
    let calls = 0;
    const started = Date.now();
    const result = await pollUntil(
      async () => {
        calls++;
        throw new Error('not yet');
      },
      { deadline: started + 100, intervalMs: 10 },
    );
    expect(result).toBe('timeout');
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    expect(calls).toBeGreaterThan(2);
  });

  it('checks once even when the deadline has passed', async () => {
    expect(await pollUntil(async () => true, { deadline: 0, intervalMs: 10 })).toBe('done');
    expect(await pollUntil(async () => false, { deadline: 0, intervalMs: 10 })).toBe('timeout');
  });

  it('stops within one interval when stop settles, without waiting for the deadline', async () => {
    const started = Date.now();
    const stop = new Promise<void>((resolve) => setTimeout(resolve, 50));
    expect(await pollUntil(async () => false, { deadline: started + 60_000, intervalMs: 30_000, stop })).toBe('stopped');
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await pollUntil(async () => false, { deadline: Date.now() + 60_000, intervalMs: 10, stop: Promise.reject(new Error('gone')) })).toBe('stopped');
  });
});

describe('answersOk', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/hang') return; // never answers
      res.statusCode = req.url === '/ok' || req.url === '/n1' ? 200 : 503;
      res.end(req.url === '/n1' ? '{"status":"ok","node":"n1"}' : '{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('is true for 200 only, and false for another status, a hanging server or a closed port', async () => {
    expect(await answersOk(`${url}/ok`, 1000)).toBe(true);
    expect(await answersOk(`${url}/starting`, 1000)).toBe(false);
    const started = Date.now();
    expect(await answersOk(`${url}/hang`, 100)).toBe(false);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await answersOk('http://127.0.0.1:1/health', 1000)).toBe(false);
  });

  it('with a node name, is true only when the body names that node', async () => {
    expect(await answersOk(`${url}/n1`, 1000, 'n1')).toBe(true);
    expect(await answersOk(`${url}/n1`, 1000, 'n2')).toBe(false);
    expect(await answersOk(`${url}/ok`, 1000, 'n1')).toBe(false);
  });
});
