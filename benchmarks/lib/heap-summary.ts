// Summaries of a V8 heap snapshot (.heapsnapshot JSON, as `node --heapsnapshot-signal` writes it) and of a
// process's /proc/<pid>/smaps: where the memory of podnet goes (benchmarks/scale/heap-profile.ts).
// Self sizes only (no dominator tree): grouped by constructor, and by the first strong retainer (the object
// and the property holding it: "SeriesState <- Array.[element]", "array <- Map.table <- Object.plain"),
// which is what tells a per-series Map from a per-probe one.

interface Snapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[], ...unknown[]];
      edge_fields: string[];
      edge_types: [string[], ...unknown[]];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/** [label, bytes, count] rows, largest first. */
export type Rows = [string, number, number][];

export interface HeapSummary {
  totalBytes: number;
  byConstructor: Rows;
  byRetainer: Rows;
  /** ArrayBuffer backing stores (outside the V8 heap) by what holds their ArrayBuffer. */
  arrayBuffers: Rows;
}

const STRING_TYPES = new Set(['string', 'concatenated string', 'sliced string']);

export function summarizeHeap(json: string, top = 40): HeapSummary {
  const snap = JSON.parse(json) as Snapshot;
  const meta = snap.snapshot.meta;
  const NF = meta.node_fields.length;
  const EF = meta.edge_fields.length;
  const types = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const iType = meta.node_fields.indexOf('type');
  const iName = meta.node_fields.indexOf('name');
  const iSize = meta.node_fields.indexOf('self_size');
  const iEdges = meta.node_fields.indexOf('edge_count');
  const eType = meta.edge_fields.indexOf('type');
  const eName = meta.edge_fields.indexOf('name_or_index');
  const eTo = meta.edge_fields.indexOf('to_node');
  const { nodes, edges, strings } = snap;
  const count = nodes.length / NF;
  const typeOf = (i: number) => types[nodes[i * NF + iType]!]!;
  const label = (i: number): string => {
    const t = typeOf(i);
    if (STRING_TYPES.has(t)) return t;
    if (t === 'code' || t === 'number') return t;
    return `${t}:${strings[nodes[i * NF + iName]!]!.slice(0, 48)}`;
  };
  // First strong retainer of each node, and the edge's name.
  const parent = new Int32Array(count).fill(-1);
  const via: string[] = new Array(count).fill('');
  let e = 0;
  for (let i = 0; i < count; i++) {
    const n = nodes[i * NF + iEdges]!;
    for (let k = 0; k < n; k++, e += EF) {
      const et = edgeTypes[edges[e + eType]!]!;
      if (et === 'weak' || et === 'shortcut') continue;
      const to = edges[e + eTo]! / NF;
      if (parent[to] !== -1 || to === i) continue;
      parent[to] = i;
      via[to] =
        et === 'element' || et === 'hidden' ? '[]' : String(strings[edges[e + eName]!] ?? edges[e + eName]);
    }
  }
  const holder = (i: number): string => (i < 0 ? '(root)' : `${label(i)}.${via[i]}`);
  const add = (m: Map<string, [number, number]>, key: string, size: number) => {
    const v = m.get(key);
    if (v) {
      v[0] += size;
      v[1]++;
    } else m.set(key, [size, 1]);
  };
  const byCtor = new Map<string, [number, number]>();
  const byRet = new Map<string, [number, number]>();
  const buffers = new Map<string, [number, number]>();
  let total = 0;
  for (let i = 0; i < count; i++) {
    const size = nodes[i * NF + iSize]!;
    if (size === 0) continue;
    total += size;
    const l = label(i);
    add(byCtor, l, size);
    const p = parent[i]!;
    let key = `${l} <- ${holder(p)}`;
    // Containers say little by themselves: one more level for arrays, plain objects and strings.
    if (p >= 0 && /^(array|hidden|object:Array|object:Object|string|concat|number)/.test(l))
      key += ` <- ${holder(parent[p]!)}`;
    add(byRet, key, size);
    if (l === 'native:system / JSArrayBufferData' && p >= 0) {
      const view = parent[p]!;
      add(buffers, view >= 0 ? `${holder(view)} <- ${holder(parent[view]!)}` : holder(p), size);
    }
  }
  const rows = (m: Map<string, [number, number]>): Rows =>
    [...m]
      .map(([k, [s, c]]): [string, number, number] => [k, s, c])
      .sort((a, b) => b[1] - a[1])
      .slice(0, top);
  return {
    totalBytes: total,
    byConstructor: rows(byCtor),
    byRetainer: rows(byRet),
    arrayBuffers: rows(buffers),
  };
}

/**
 * RSS of a /proc/<pid>/smaps by kind of mapping: V8 heap pages (256 KiB anonymous), the brk heap (glibc's
 * main arena), other anonymous (other arenas, large allocations, thread stacks, JIT code), files.
 */
export function summarizeSmaps(smaps: string): Rows {
  const out = new Map<string, [number, number]>();
  let kind = '';
  for (const line of smaps.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m) {
      const kib = (Number.parseInt(m[2]!, 16) - Number.parseInt(m[1]!, 16)) / 1024;
      const name = m[4]!;
      if (name === '[heap]') kind = 'brk heap (glibc main arena)';
      else if (name.startsWith('/')) kind = `file ${name.split('/').at(-1)}`;
      else if (name !== '') kind = name;
      else if (m[3]!.includes('x')) kind = 'anonymous, executable (JIT code)';
      else if (kib === 256) kind = 'anonymous 256 KiB (V8 heap pages)';
      else kind = 'anonymous, other (arenas, large allocations, stacks)';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && kind) {
      const v = out.get(kind);
      const bytes = Number(rss[1]) * 1024;
      if (v) {
        v[0] += bytes;
        v[1]++;
      } else out.set(kind, [bytes, 1]);
    }
  }
  return [...out].map(([k, [s, c]]): [string, number, number] => [k, s, c]).sort((a, b) => b[1] - a[1]);
}
