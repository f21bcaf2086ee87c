// A kustomize renderer for what infra/k8s uses, so that the tests check the objects an
// overlay really produces (no kustomize binary here): `resources` (files and directories),
// `patches` (strategic merge patches from files) and `images`. Any other field of a
// kustomization throws, so using one without teaching this renderer fails the tests
// instead of being ignored.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const KNOWN_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'patches', 'images']);

/**
 * Merge keys of the lists a strategic merge patch merges item by item (the Kubernetes API's
 * `patchMergeKey`s for the fields used here); every other list is replaced by the patch's.
 */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  ports: 'containerPort',
  imagePullSecrets: 'name',
};

/** Reads every YAML document of a file (empty documents skipped). */
export function readYamlDocuments(file: string): Json[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  const out: Json[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as Json;
    if (value !== null) out.push(value);
  }
  return out;
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A strategic merge of `patch` into `base` (`key` is the field both are the value of). */
export function strategicMerge(base: Json | undefined, patch: Json, key = ''): Json {
  if (isObject(base) && isObject(patch)) {
    const out: JsonObject = { ...base };
    for (const [k, v] of Object.entries(patch)) {
      if (v === null) delete out[k];
      else out[k] = strategicMerge(base[k], v, k);
    }
    return out;
  }
  const mergeKey = MERGE_KEYS[key];
  if (Array.isArray(base) && Array.isArray(patch) && mergeKey !== undefined) {
    const out = [...base];
    for (const item of patch) {
      if (!isObject(item) || item[mergeKey] === undefined) throw new Error(`a patch item of ${key} has no ${mergeKey}`);
      const i = out.findIndex((b) => isObject(b) && b[mergeKey] === item[mergeKey]);
      if (i >= 0) out[i] = strategicMerge(out[i], item, '');
      else out.push(item);
    }
    return out;
  }
  return patch;
}

function asObject(value: Json, where: string): K8sObject {
  if (!isObject(value) || typeof value['apiVersion'] !== 'string' || typeof value['kind'] !== 'string' || !isObject(value['metadata']) || typeof value['metadata']['name'] !== 'string') {
    throw new Error(`${where}: not a Kubernetes object (apiVersion, kind, metadata.name)`);
  }
  return value as unknown as K8sObject;
}

/** Every container of a pod template or pod spec inside `o` (StatefulSet, Job, Pod…). */
export function containersOf(o: K8sObject): JsonObject[] {
  const spec = o['spec'] as JsonObject | undefined;
  const pod = (o.kind === 'Pod' ? spec : (spec?.['template'] as JsonObject | undefined)?.['spec']) as JsonObject | undefined;
  return [...((pod?.['initContainers'] ?? []) as JsonObject[]), ...((pod?.['containers'] ?? []) as JsonObject[])];
}

/** Renders the kustomization in `dir` into its objects, in order. */
export function renderKustomization(dir: string): K8sObject[] {
  const file = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'].map((f) => join(dir, f)).find((f) => existsSync(f));
  if (file === undefined) throw new Error(`${dir}: no kustomization.yaml`);
  const [k] = readYamlDocuments(file);
  if (!isObject(k)) throw new Error(`${file}: not a mapping`);
  const unknown = Object.keys(k).filter((f) => !KNOWN_FIELDS.has(f));
  if (unknown.length > 0) throw new Error(`${file}: fields this renderer does not implement: ${unknown.join(', ')}`);
  if (k['kind'] !== 'Kustomization') throw new Error(`${file}: kind must be Kustomization`);

  const objects: K8sObject[] = [];
  for (const r of (k['resources'] ?? []) as string[]) {
    const path = resolve(dir, r);
    if (statSync(path).isDirectory()) objects.push(...renderKustomization(path));
    else objects.push(...readYamlDocuments(path).map((d, i) => asObject(d, `${path} #${i}`)));
  }
  const seen = new Set<string>();
  for (const o of objects) {
    const id = `${o.kind}/${o.metadata.name}`;
    if (seen.has(id)) throw new Error(`${dir}: ${id} is defined twice`);
    seen.add(id);
  }

  for (const p of (k['patches'] ?? []) as JsonObject[]) {
    const unknownPatch = Object.keys(p).filter((f) => f !== 'path');
    if (unknownPatch.length > 0 || typeof p['path'] !== 'string') throw new Error(`${file}: only patches with a path are implemented`);
    const path = resolve(dir, p['path']);
    for (const [i, doc] of readYamlDocuments(path).entries()) {
      const patch = asObject(doc, `${path} #${i}`);
      const at = objects.findIndex((o) => o.apiVersion === patch.apiVersion && o.kind === patch.kind && o.metadata.name === patch.metadata.name);
      if (at < 0) throw new Error(`${path}: patches ${patch.kind}/${patch.metadata.name}, which ${dir} does not have`);
      objects[at] = strategicMerge(objects[at] as unknown as Json, patch as unknown as Json) as unknown as K8sObject;
    }
  }

  for (const img of (k['images'] ?? []) as JsonObject[]) {
    const name = img['name'] as string;
    for (const o of objects) {
      for (const c of containersOf(o)) {
        const image = c['image'] as string;
        const bare = image.replace(/@.*$/, '').replace(/:[^/:]*$/, '');
        if (bare !== name) continue;
        const tag = img['digest'] ? `@${img['digest'] as string}` : `:${(img['newTag'] as string | undefined) ?? (image.slice(bare.length + 1) || 'latest')}`;
        c['image'] = `${(img['newName'] as string | undefined) ?? bare}${tag}`;
      }
    }
  }
  return objects;
}
