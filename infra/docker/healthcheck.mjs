// The image's HEALTHCHECK: GET /health on the node in this container, with node itself
// (the slim image has no curl). Exit 0 when it answers 200 within 4 s, else 1.
const host = process.env.HOST && !['0.0.0.0', '::', '[::]'].includes(process.env.HOST) ? process.env.HOST : '127.0.0.1';
const port = process.env.PORT || '8080';
const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/health`;
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(4000) });
  process.exit(res.status === 200 ? 0 : 1);
} catch {
  process.exit(1);
}
