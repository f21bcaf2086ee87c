// infra/k8s: every object of the base, the overlays, the monitoring and the load
// kustomizations, rendered as kustomize would, checked against the Kubernetes API schemas
// (and the cert-manager and Prometheus Operator CRDs'); then each pod's environment, as the
// kubelet would expand it, loaded by the node's own configuration loader and checked
// against what the manifests really provide (Services, Secrets, the NATS chart's names).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '@replica/node';
import { configVariables, containerConfig, hasCommand, imageEnv, INFRA, ROOT, sh } from './infra-support.js';
import { fieldErrors, schemaErrors } from './kubernetes-schemas.js';
import { containersOf, renderKustomization, type K8sObject } from './kustomize.js';

const K8S = `${INFRA}k8s/`;

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: EnvVar[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  startupProbe?: { httpGet?: { path: string; port: string | number } };
  resources?: { requests?: Record<string, string> };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface Volume {
  name: string;
  projected?: { sources: { secret?: { name: string; items?: { key: string; path: string }[] } }[] };
}
interface PodTemplate {
  metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
  spec: { containers: Container[]; volumes?: Volume[]; enableServiceLinks?: boolean; securityContext?: { runAsNonRoot?: boolean; runAsUser?: number }; restartPolicy?: string };
}
interface StatefulSetSpec {
  serviceName: string;
  replicas: number;
  podManagementPolicy?: string;
  selector: { matchLabels: Record<string, string> };
  template: PodTemplate;
  volumeClaimTemplates: { metadata: { name: string } }[];
}

const of = <T>(o: K8sObject) => o as unknown as { metadata: K8sObject['metadata']; spec: T };
const find = (objects: readonly K8sObject[], kind: string, name?: string) => {
  const o = objects.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  if (o === undefined) throw new Error(`no ${kind}${name ? `/${name}` : ''}`);
  return o;
};
const selects = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);

/** The environment the kubelet gives container `c` of pod `pod`: the image's ENV, then the env list with fieldRefs resolved and $(VAR) expanded. */
function podEnv(c: Container, pod: { name: string; labels: Record<string, string> }): Record<string, string> {
  const declared: Record<string, string> = {};
  for (const e of c.env ?? []) {
    let value = e.value;
    const field = e.valueFrom?.fieldRef?.fieldPath;
    if (field === 'metadata.name') value = pod.name;
    else if (field !== undefined) {
      const label = /^metadata\.labels\['([^']+)'\]$/.exec(field);
      if (!label) throw new Error(`${e.name}: fieldRef ${field} is not resolved by this test`);
      value = pod.labels[label[1] as string] ?? '';
    }
    if (value === undefined) throw new Error(`${e.name}: neither a value nor a fieldRef`);
    declared[e.name] = value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, name: string) => declared[name] ?? all);
  }
  return { ...imageEnv(), ...declared };
}

/** Pod `i` of a StatefulSet: its name and labels (the controller adds the pod name and, since Kubernetes 1.28, the index). */
function podOf(sts: K8sObject, i: number) {
  const name = `${sts.metadata.name}-${i}`;
  return { name, labels: { ...of<StatefulSetSpec>(sts).spec.template.metadata.labels, 'statefulset.kubernetes.io/pod-name': name, 'apps.kubernetes.io/pod-index': String(i) } };
}

const nodeVersion = (JSON.parse(readFileSync(`${ROOT}apps/node/package.json`, 'utf8')) as { version: string }).version;
const imageUid = Number(/^USER\s+(\d+)/m.exec(readFileSync(`${INFRA}docker/Dockerfile`, 'utf8').split(/^FROM /m).at(-1) as string)?.[1]);

const rendered = {
  base: renderKustomization(`${K8S}base`),
  plexus: renderKustomization(`${K8S}overlays/plexus`),
  nats: renderKustomization(`${K8S}overlays/nats`),
  monitoring: renderKustomization(`${K8S}monitoring`),
  load: renderKustomization(`${K8S}load`),
};

describe('infra/k8s', () => {
  const all = Object.values(rendered).flat();

  it('every object of base, overlays/plexus, overlays/nats, monitoring and load passes the schema of its kind (Kubernetes API, cert-manager and Prometheus Operator CRDs)', () => {
    expect(all.length).toBeGreaterThan(10);
    expect(schemaErrors(all)).toEqual([]);
  });

  it('no object has a field its schema does not define', () => {
    expect(fieldErrors(all)).toEqual([]);
  }, 60_000);

  it('the schema checks fail on wrong objects: an unknown field, a wrong type, an enum value, a kind without a schema', () => {
    const sts = structuredClone(find(rendered.plexus, 'StatefulSet'));
    (sts['spec'] as Record<string, unknown>)['replicaz'] = 3;
    expect(fieldErrors([sts]).join('\n')).toContain('replicaz');
    const wrongType = structuredClone(find(rendered.plexus, 'StatefulSet'));
    (wrongType['spec'] as Record<string, unknown>)['replicas'] = '3';
    expect(schemaErrors([wrongType]).join('\n')).toContain('replicas');
    const cert = structuredClone(find(rendered.plexus, 'Certificate'));
    ((cert['spec'] as Record<string, unknown>)['privateKey'] as Record<string, unknown>)['algorithm'] = 'EC';
    expect(schemaErrors([cert]).join('\n')).toContain('algorithm');
    const deep = structuredClone(find(rendered.plexus, 'Certificate'));
    ((deep['spec'] as Record<string, unknown>)['issuerRef'] as Record<string, unknown>)['namespace'] = 'x';
    expect(fieldErrors([deep]).join('\n')).toContain('namespace');
    expect(() => schemaErrors([{ apiVersion: 'v1', kind: 'Podd', metadata: { name: 'x' } }])).toThrow(/no schema/);
  }, 60_000);

  it('the renderer merges a patch by the API\'s merge keys, sets images, and refuses what it does not implement', () => {
    const dir = mkdtempSync(join(tmpdir(), 'replica-kustomize-'));
    try {
      const sts = { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 's' }, spec: { template: { spec: { containers: [{ name: 'a', image: 'img:1', env: [{ name: 'X', value: '1' }, { name: 'Y', value: '2' }] }, { name: 'b', image: 'other' }] } } } };
      writeFileSync(join(dir, 'sts.yaml'), JSON.stringify(sts));
      writeFileSync(join(dir, 'patch.yaml'), JSON.stringify({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 's' }, spec: { template: { spec: { containers: [{ name: 'a', env: [{ name: 'Y', value: '3' }, { name: 'Z', value: '4' }] }] } } } }));
      writeFileSync(join(dir, 'kustomization.yaml'), JSON.stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: ['sts.yaml'], patches: [{ path: 'patch.yaml' }], images: [{ name: 'img', newName: 'reg/img', newTag: '2' }] }));
      const [out] = renderKustomization(dir) as [K8sObject];
      const [a, b] = containersOf(out) as [Record<string, unknown>, Record<string, unknown>];
      expect(a['env']).toEqual([{ name: 'X', value: '1' }, { name: 'Y', value: '3' }, { name: 'Z', value: '4' }]);
      expect(a['image']).toBe('reg/img:2');
      expect(b).toEqual({ name: 'b', image: 'other' });
      writeFileSync(join(dir, 'kustomization.yaml'), JSON.stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: ['sts.yaml'], namePrefix: 'x-' }));
      expect(() => renderKustomization(dir)).toThrow(/namePrefix/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe.each(['plexus', 'nats'] as const)('overlay %s: the StatefulSet', (overlay) => {
    const objects = rendered[overlay];
    const sts = find(objects, 'StatefulSet');
    const spec = of<StatefulSetSpec>(sts).spec;
    const pod = spec.template;
    const node = pod.spec.containers.find((c) => c.name === 'replica') as Container;
    const port = (name: string) => node.ports?.find((p) => p.name === name)?.containerPort;

    it('runs the node image of this version, as the image\'s non-root user, with requests on every container', () => {
      expect(node.image).toBe(`replica-node:${nodeVersion}`);
      expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: imageUid });
      for (const c of pod.spec.containers) expect(Object.keys(c.resources?.requests ?? {}).sort(), c.name).toEqual(['cpu', 'memory']);
    });

    it('names each node after its pod, reachable under a headless Service that publishes pods before they are ready, started in parallel', () => {
      expect(node.env?.find((e) => e.name === 'NODE_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
      // a node is ready only once it reached a peer: ordered start-up would wait for pod 0 forever
      expect(spec.podManagementPolicy).toBe('Parallel');
      const headless = of<{ clusterIP: string; publishNotReadyAddresses: boolean; selector: Record<string, string>; ports: { name: string; targetPort: string }[] }>(find(objects, 'Service', spec.serviceName)).spec;
      expect(headless.clusterIP).toBe('None');
      expect(headless.publishNotReadyAddresses).toBe(true);
      expect(selects(headless.selector, pod.metadata.labels)).toBe(true);
      expect(headless.ports.map((p) => p.targetPort).sort()).toEqual(['http', 'replication']);
      expect(selects(spec.selector.matchLabels, pod.metadata.labels)).toBe(true);
      // Services' variables (NATS_SERVICE_HOST for a Service named nats, …) would join the node's environment
      expect(pod.spec.enableServiceLinks).toBe(false);
    });

    it('keeps each node\'s data in its own claim, mounted at DATA_DIR', () => {
      const env = podEnv(node, podOf(sts, 0));
      const claims = spec.volumeClaimTemplates.map((t) => t.metadata.name);
      expect(node.volumeMounts?.find((m) => m.mountPath === env['DATA_DIR'])?.name).toBeOneOf(claims);
    });

    it('probes readiness on /ready and liveness on /health, on the port the node listens on', () => {
      expect(node.readinessProbe?.httpGet?.path).toBe('/ready');
      expect(node.livenessProbe?.httpGet?.path).toBe('/health');
      const env = podEnv(node, podOf(sts, 0));
      for (const probe of [node.readinessProbe, node.livenessProbe, node.startupProbe]) {
        expect(probe?.httpGet?.port).toBe('http');
      }
      expect(String(port('http'))).toBe(env['PORT']);
      expect(pod.metadata.annotations).toEqual({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': env['PORT'], 'prometheus.io/path': '/metrics' });
    });

    it('sets only variables a node reads (and helpers from the downward API that a later variable expands), each $(VAR) defined before its use', () => {
      const known = configVariables();
      const env = node.env ?? [];
      for (const [i, e] of env.entries()) {
        for (const m of (e.value ?? '').matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) {
          expect(env.slice(0, i).map((d) => d.name), `${e.name} uses $(${m[1]})`).toContain(m[1]);
        }
        if (known.has(e.name)) continue;
        expect(e.valueFrom?.fieldRef, `${e.name} is not a node setting`).toBeDefined();
        expect(env.slice(i + 1).some((later) => later.value?.includes(`$(${e.name})`)), `${e.name} is not a node setting, nor used by one`).toBe(true);
      }
    });

    it('the client Service and the PodDisruptionBudget select the nodes; the budget lets one go at a time', () => {
      const client = of<{ selector: Record<string, string>; clusterIP?: string }>(find(objects, 'Service', 'replica')).spec;
      expect(client.clusterIP).toBeUndefined();
      expect(selects(client.selector, pod.metadata.labels)).toBe(true);
      const pdb = of<{ maxUnavailable: number; selector: { matchLabels: Record<string, string> } }>(find(objects, 'PodDisruptionBudget')).spec;
      expect(pdb.maxUnavailable).toBe(1);
      expect(selects(pdb.selector.matchLabels, pod.metadata.labels)).toBe(true);
    });
  });

  describe('overlay plexus', () => {
    const objects = rendered.plexus;
    const sts = find(objects, 'StatefulSet');
    const spec = of<StatefulSetSpec>(sts).spec;
    const node = spec.template.spec.containers.find((c) => c.name === 'replica') as Container;
    const replication = node.ports?.find((p) => p.name === 'replication')?.containerPort;

    it.each([0, 1, 2])('pod %i loads a plexus configuration: every other pod as a peer under the headless Service, its own address advertised', (i) => {
      expect(i).toBeLessThan(spec.replicas);
      const pod = podOf(sts, i);
      const { config, problems } = containerConfig(podEnv(node, pod), (node.volumeMounts ?? []).map((m) => m.mountPath));
      expect(problems).toEqual([]);
      if (config?.transport.kind !== 'plexus') throw new Error('not a plexus node');
      expect(config.nodeName).toBe(pod.name);
      const others = Array.from({ length: spec.replicas }, (_, j) => `${sts.metadata.name}-${j}`).filter((n) => n !== pod.name);
      expect(config.transport.peers).toEqual(others.map((name) => ({ name, host: `${name}.${spec.serviceName}`, port: replication })));
      expect(config.transport.advertise).toBe(`${pod.name}.${spec.serviceName}:${replication}`);
      expect(config.transport.listen.port).toBe(replication);
    });

    it.each([0, 1, 2])('pod %i reads its TLS files from its own Certificate\'s Secret: CN = its node name, its DNS names, server and client auth, from the overlay\'s Issuer', (i) => {
      const pod = podOf(sts, i);
      const env = podEnv(node, pod);
      const volumes = spec.template.spec.volumes ?? [];
      const certificates = objects.filter((o) => o.kind === 'Certificate');
      expect(certificates).toHaveLength(spec.replicas);
      for (const [variable, key] of [['TLS_CA', 'ca.crt'], ['TLS_CERT', 'tls.crt'], ['TLS_KEY', 'tls.key']] as const) {
        const path = env[variable] as string;
        const mount = node.volumeMounts?.find((m) => path.startsWith(`${m.mountPath}/`));
        expect(mount, `${variable}=${path} is in no mounted volume`).toBeDefined();
        const relative = path.slice((mount?.mountPath.length ?? 0) + 1);
        const source = volumes.find((v) => v.name === mount?.name)?.projected?.sources.find((s) => s.secret?.items?.some((it) => it.path === relative))?.secret;
        expect(source?.items?.find((it) => it.path === relative)?.key, `${variable}=${path}`).toBe(key);
        const cert = of<{ secretName: string; commonName: string; dnsNames: string[]; usages: string[]; privateKey: { algorithm: string }; issuerRef: { name: string; kind: string } }>(certificates.find((c) => of<{ secretName: string }>(c).spec.secretName === source?.name) as K8sObject).spec;
        expect(cert.commonName).toBe(pod.name);
        expect(cert.dnsNames).toContain(`${pod.name}.${spec.serviceName}`);
        expect(cert.usages).toEqual(expect.arrayContaining(['server auth', 'client auth']));
        expect(cert.privateKey.algorithm).toBe('ECDSA');
        expect(cert.issuerRef.kind).toBe('Issuer');
        expect(find(objects, 'Issuer', cert.issuerRef.name)).toBeDefined();
      }
    });
  });

  describe('overlay nats and the NATS chart\'s values', () => {
    const objects = rendered.nats;
    const sts = find(objects, 'StatefulSet');
    const spec = of<StatefulSetSpec>(sts).spec;
    const node = spec.template.spec.containers.find((c) => c.name === 'replica') as Container;
    interface Values {
      fullnameOverride: string;
      config: {
        cluster: { enabled: boolean; replicas: number };
        jetstream: { enabled: boolean; fileStore: { enabled: boolean; pvc: { enabled: boolean; size: string } } };
        serverNamePrefix?: string;
        merge: Record<string, unknown>;
      };
    }
    const values = parse(readFileSync(`${K8S}overlays/nats/nats-values.yaml`, 'utf8')) as Values;
    const fullname = values.fullnameOverride;
    /** nats.conf as the chart writes config.merge: JSON in which "<< x >>" stands for x unquoted (a unit, a variable). */
    const mergeConf = (extra: Record<string, unknown>) => JSON.stringify({ ...values.config.merge, ...extra }, null, 2).replace(/"<<\s+(.*?)\s+>>"/g, '$1');

    it('the chart runs three clustered servers with JetStream on files, each tagged with its name, with payloads above BODY_LIMIT', () => {
      expect(values.config.cluster).toEqual({ enabled: true, replicas: 3 });
      expect(values.config.jetstream.enabled).toBe(true);
      expect(values.config.jetstream.fileStore.enabled).toBe(true);
      expect(values.config.jetstream.fileStore.pvc.enabled).toBe(true);
      expect(values.config.merge['server_tags']).toEqual(['<< $SERVER_NAME >>']);
      const payload = /^<< (\d+)MB >>$/.exec(String(values.config.merge['max_payload']));
      expect(Number(payload?.[1]) * 1024 * 1024).toBeGreaterThan(loadConfig({}).bodyLimit);
    });

    it.each([0, 1, 2])('pod %i loads a nats configuration: the server of its index first, then the chart\'s client Service, its stream placed on that server\'s tag', (i) => {
      expect(i).toBeLessThan(values.config.cluster.replicas);
      const pod = podOf(sts, i);
      const { config, problems } = containerConfig(podEnv(node, pod), (node.volumeMounts ?? []).map((m) => m.mountPath));
      expect(problems).toEqual([]);
      if (config?.transport.kind !== 'nats') throw new Error('not a nats node');
      // the chart: StatefulSet and cluster named fullname, pods fullname-i, headless Service fullname-headless,
      // client Service fullname, server_name (our tag) = serverNamePrefix + pod name
      const server = `${fullname}-${i}`;
      expect(config.transport.servers).toEqual([`nats://${server}.${fullname}-headless:4222`, `nats://${fullname}:4222`]);
      expect(config.transport.placement).toEqual({ cluster: fullname, tag: `${values.config.serverNamePrefix ?? ''}${server}` });
    });

    it.skipIf(!hasCommand('nats-server'))('config.merge, written as the chart writes it, is a configuration nats-server accepts (nats-server -t)', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'replica-nats-values-'));
      try {
        writeFileSync(join(dir, 'nats.conf'), mergeConf({ server_name: '<< $SERVER_NAME >>', jetstream: { store_dir: dir } }));
        const out = await sh('nats-server', ['-t', '-c', join(dir, 'nats.conf')], { env: { ...process.env, SERVER_NAME: `${fullname}-0` }, stderr: true });
        expect(out).toContain('is valid');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  it('the ServiceMonitor scrapes /metrics on the http port of the headless Service, which lists every node', () => {
    const monitor = of<{ selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string }[] }>(find(rendered.monitoring, 'ServiceMonitor')).spec;
    const services = rendered.base.filter((o) => o.kind === 'Service' && selects(monitor.selector.matchLabels, o.metadata.labels ?? {}));
    expect(services.map((s) => s.metadata.name)).toEqual([of<StatefulSetSpec>(find(rendered.base, 'StatefulSet')).spec.serviceName]);
    expect(monitor.endpoints).toEqual([expect.objectContaining({ port: 'http', path: '/metrics' })]);
    expect(of<{ ports: { name: string }[] }>(services[0] as K8sObject).spec.ports.map((p) => p.name)).toContain('http');
  });

  it('the load Job runs the load image once, against every node by its name under the headless Service', () => {
    const job = find(rendered.load, 'Job');
    const pod = (job['spec'] as { template: PodTemplate }).template;
    const [load] = pod.spec.containers as [Container];
    expect(load.image).toBe(`replica-load:${nodeVersion}`);
    expect(pod.spec.restartPolicy).toBe('Never');
    expect(Object.keys(load.resources?.requests ?? {}).sort()).toEqual(['cpu', 'memory']);
    const sts = of<StatefulSetSpec>(find(rendered.base, 'StatefulSet'));
    const http = sts.spec.template.spec.containers[0]?.ports?.find((p) => p.name === 'http')?.containerPort;
    const urls = load.args?.[(load.args.indexOf('--urls') ?? -1) + 1]?.split(',');
    expect(urls).toEqual(Array.from({ length: sts.spec.replicas }, (_, i) => `http://${sts.metadata.name}-${i}.${sts.spec.serviceName}:${http}`));
  });
});
