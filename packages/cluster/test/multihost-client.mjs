// Run by multihost.test.ts inside the rehearsal's client namespace, as a load generator
// on another machine would run. Prints one line of JSON.
//   write {"urls":[...],"count":n,"concurrency":n,"prefix":"w"}
//     POSTs `count` new records, write n to node n mod the node count, `concurrency`
//     requests in flight (fetch keeps several connections to each node open):
//     {"acked":[ids answered 201],"refused":{"<status or error>":n}}
//   check {"urls":[...],"concurrency":n}, the ids as a JSON array on stdin
//     GETs every id from every node: {"missing":{"<url>":[ids not answered 200]}}
const [mode, arg] = process.argv.slice(2);
const o = JSON.parse(arg ?? '{}');
if (!['write', 'check'].includes(mode) || !Array.isArray(o.urls) || o.urls.length === 0 || !(o.concurrency > 0)) {
  console.error('usage: multihost-client.mjs write|check <json>');
  process.exit(2);
}

/** Runs `task(i)` for i in 0…n-1, `o.concurrency` at a time. */
async function pool(n, task) {
  let next = 0;
  const worker = async () => {
    while (next < n) await task(next++);
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
}

if (mode === 'write') {
  const acked = [];
  const refused = {};
  await pool(o.count, async (n) => {
    const id = `${o.prefix}-${n}`;
    let outcome;
    try {
      const r = await fetch(`${o.urls[n % o.urls.length]}/items`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id, n, pad: 'x'.repeat(300) }),
        signal: AbortSignal.timeout(10_000),
      });
      await r.arrayBuffer();
      outcome = r.status === 201 ? 'acked' : String(r.status);
    } catch (err) {
      outcome = err?.cause?.code ?? err?.name ?? 'error';
    }
    if (outcome === 'acked') acked.push(id);
    else refused[outcome] = (refused[outcome] ?? 0) + 1;
  });
  console.log(JSON.stringify({ acked, refused }));
} else {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const ids = JSON.parse(input);
  const missing = Object.fromEntries(o.urls.map((u) => [u, []]));
  await pool(o.urls.length * ids.length, async (k) => {
    const url = o.urls[k % o.urls.length];
    const id = ids[Math.floor(k / o.urls.length)];
    let status;
    try {
      const r = await fetch(`${url}/items/${encodeURIComponent(id)}`, { signal: AbortSignal.timeout(10_000) });
      await r.arrayBuffer();
      status = r.status;
    } catch (err) {
      status = err?.cause?.code ?? err?.name ?? 'error';
    }
    if (status !== 200) missing[url].push(id);
  });
  console.log(JSON.stringify({ missing }));
}
