// Kubernetes objects checked against the API's schemas, in two ways:
// - validate() of the kubernetes-models classes (the OpenAPI schemas of the Kubernetes API,
//   and of the cert-manager and Prometheus Operator CRDs): types, enums, required fields,
//   formats. It lets unknown fields through, which the API server (kubectl's default
//   strict field validation) refuses, so also
// - the TypeScript compiler: each object as an object literal of the model's interface,
//   whose excess-property check reports every field the schema does not have, at any depth.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Certificate } from '@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate';
import { Issuer } from '@kubernetes-models/cert-manager/cert-manager.io/v1/Issuer';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Service } from 'kubernetes-models/v1/Service';
import ts from 'typescript';
import type { K8sObject } from './kustomize.js';

interface Model {
  /** The model class: `new Class(data).validate()` throws on the first schema violation. */
  readonly Class: new (data: never) => { validate(): void };
  /** Module and interface of its TypeScript type. */
  readonly module: string;
  readonly type: string;
}

/** Every kind infra/k8s may use, by `apiVersion/kind`; another kind fails the tests until it is added here. */
const MODELS: Record<string, Model> = {
  'v1/Service': { Class: Service, module: 'kubernetes-models/v1/Service', type: 'IService' },
  'apps/v1/StatefulSet': { Class: StatefulSet, module: 'kubernetes-models/apps/v1/StatefulSet', type: 'IStatefulSet' },
  'policy/v1/PodDisruptionBudget': { Class: PodDisruptionBudget, module: 'kubernetes-models/policy/v1/PodDisruptionBudget', type: 'IPodDisruptionBudget' },
  'batch/v1/Job': { Class: Job, module: 'kubernetes-models/batch/v1/Job', type: 'IJob' },
  'cert-manager.io/v1/Certificate': { Class: Certificate, module: '@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate', type: 'ICertificate' },
  'cert-manager.io/v1/Issuer': { Class: Issuer, module: '@kubernetes-models/cert-manager/cert-manager.io/v1/Issuer', type: 'IIssuer' },
  'monitoring.coreos.com/v1/ServiceMonitor': { Class: ServiceMonitor, module: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor', type: 'IServiceMonitor' },
};

const label = (o: K8sObject) => `${o.kind}/${o.metadata.name}`;

function modelOf(o: K8sObject): Model {
  const m = MODELS[`${o.apiVersion}/${o.kind}`];
  if (m === undefined) throw new Error(`${label(o)}: no schema known for ${o.apiVersion} ${o.kind} (add it to MODELS)`);
  return m;
}

/** Schema violations of each object, as `Kind/name: message` (empty: all valid). */
export function schemaErrors(objects: readonly K8sObject[]): string[] {
  const errors: string[] = [];
  for (const o of objects) {
    const { Class } = modelOf(o);
    try {
      new Class(structuredClone(o) as never).validate();
    } catch (err) {
      errors.push(`${label(o)}: ${(err as Error).message}`);
    }
  }
  return errors;
}

// The virtual file sits in this directory so that the model packages resolve from here.
const VIRTUAL = join(fileURLToPath(new URL('.', import.meta.url)), '__k8s_manifests__.ts');

/**
 * Fields the schemas do not have, and values of the wrong type, found by type-checking
 * each object against its model's interface; as `Kind/name: message (line)`.
 */
export function fieldErrors(objects: readonly K8sObject[]): string[] {
  const starts: number[] = [];
  let source = '';
  for (const [i, o] of objects.entries()) {
    const m = modelOf(o);
    starts.push(source.length);
    source += `export const m${i}: import(${JSON.stringify(m.module)}).${m.type} = ${JSON.stringify(o, null, 2)};\n`;
  }
  const options: ts.CompilerOptions = { strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, skipLibCheck: true, types: [] };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, languageVersion, ...rest) => (name === VIRTUAL ? ts.createSourceFile(name, source, languageVersion, true) : getSourceFile(name, languageVersion, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === VIRTUAL || fileExists(name);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => (name === VIRTUAL ? source : readFile(name));
  const program = ts.createProgram([VIRTUAL], options, host);
  const file = program.getSourceFile(VIRTUAL);
  if (file === undefined) throw new Error('the manifests did not load into the TypeScript program');
  const diagnostics = [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)];
  return diagnostics.map((d) => {
    const at = d.start ?? 0;
    let i = 0;
    while (i + 1 < starts.length && (starts[i + 1] as number) <= at) i++;
    const { line } = file.getLineAndCharacterOfPosition(at);
    const text = file.text.split('\n')[line]?.trim() ?? '';
    return `${label(objects[i] as K8sObject)}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')} (at ${text})`;
  });
}
