// Grafana Alloy configuration syntax: a small parser and checker for the files in otel-config/alloy/.
//
// Alloy cannot be installed here (no Debian or npm package), so this implements the documented syntax
// (blocks `name "label" { ... }`, attributes `key = expr`, expressions: strings, raw `strings`, numbers,
// bools, null, lists, objects, references `a.b.c`, calls `f(x)`, comments) and checks what Alloy checks at
// load time for the components podnet's configs use: known component names, a label on every component,
// allowed arguments and blocks, and references that resolve to a declared component's export.

export type Expr =
  | { readonly t: 'string' | 'number' | 'bool' | 'null'; readonly v: string }
  | { readonly t: 'list'; readonly items: readonly Expr[] }
  | { readonly t: 'object'; readonly fields: ReadonlyMap<string, Expr> }
  | { readonly t: 'ref'; readonly path: string; readonly line: number }
  | { readonly t: 'call'; readonly fn: string; readonly args: readonly Expr[] };

export interface Attr {
  readonly kind: 'attr';
  readonly name: string;
  readonly value: Expr;
  readonly line: number;
}
export interface Block {
  readonly kind: 'block';
  readonly name: string;
  readonly label?: string;
  readonly body: readonly (Attr | Block)[];
  readonly line: number;
}

interface Token {
  readonly t: 'ident' | 'string' | 'number' | 'punct';
  readonly v: string;
  readonly line: number;
}

export class AlloySyntaxError extends Error {}

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  const fail = (m: string) => {
    throw new AlloySyntaxError(`line ${line}: ${m}`);
  };
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\n') {
      line++;
      i++;
    } else if (/\s/.test(c)) i++;
    else if (c === '/' && src[i + 1] === '/') {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      if (end < 0) fail('unterminated block comment');
      line += src.slice(i, end).split('\n').length - 1;
      i = end + 2;
    } else if (c === '"') {
      let j = i + 1;
      let v = '';
      while (j < src.length && src[j] !== '"') {
        if (src[j] === '\n') fail('newline in string');
        if (src[j] === '\\') {
          const e = src[j + 1];
          if (e === undefined || !'nrt"\\'.includes(e)) fail(`bad escape \\${e ?? ''}`);
          v += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e;
          j += 2;
        } else v += src[j++];
      }
      if (j >= src.length) fail('unterminated string');
      out.push({ t: 'string', v, line });
      i = j + 1;
    } else if (c === '`') {
      const end = src.indexOf('`', i + 1);
      if (end < 0) fail('unterminated raw string');
      const v = src.slice(i + 1, end);
      out.push({ t: 'string', v, line });
      line += v.split('\n').length - 1;
      i = end + 1;
    } else if (/[0-9]/.test(c) || (c === '-' && /[0-9]/.test(src[i + 1] ?? ''))) {
      const m = /^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(src.slice(i))!;
      out.push({ t: 'number', v: m[0], line });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*/.exec(src.slice(i))!;
      out.push({ t: 'ident', v: m[0], line });
      i += m[0].length;
    } else if ('{}[]()=,'.includes(c)) {
      out.push({ t: 'punct', v: c, line });
      i++;
    } else fail(`unexpected character '${c}'`);
  }
  return out;
}

export function parseAlloy(src: string): (Attr | Block)[] {
  const toks = tokenize(src);
  let p = 0;
  const peek = () => toks[p];
  const fail = (m: string): never => {
    throw new AlloySyntaxError(`line ${peek()?.line ?? 'EOF'}: ${m}`);
  };
  const expect = (v: string) => {
    const t = toks[p];
    if (t?.t !== 'punct' || t.v !== v) fail(`expected '${v}', found '${t?.v ?? 'end of file'}'`);
    p++;
  };
  const isPunct = (v: string) => peek()?.t === 'punct' && peek()?.v === v;

  function expr(): Expr {
    const t = peek() ?? fail('expected an expression');
    if (t.t === 'string' || t.t === 'number') {
      p++;
      return { t: t.t, v: t.v };
    }
    if (t.t === 'ident') {
      p++;
      if (t.v === 'true' || t.v === 'false') return { t: 'bool', v: t.v };
      if (t.v === 'null') return { t: 'null', v: t.v };
      if (isPunct('(')) {
        p++;
        const args: Expr[] = [];
        while (!isPunct(')')) {
          args.push(expr());
          if (!isPunct(')')) expect(',');
        }
        p++;
        return { t: 'call', fn: t.v, args };
      }
      return { t: 'ref', path: t.v, line: t.line };
    }
    if (isPunct('[')) {
      p++;
      const items: Expr[] = [];
      while (!isPunct(']')) {
        items.push(expr());
        if (!isPunct(']')) expect(',');
      }
      p++;
      return { t: 'list', items };
    }
    if (isPunct('{')) {
      p++;
      const fields = new Map<string, Expr>();
      while (!isPunct('}')) {
        const k = peek();
        if (!k || (k.t !== 'ident' && k.t !== 'string')) fail('expected an object key');
        p++;
        expect('=');
        fields.set(k!.v, expr());
        if (!isPunct('}')) expect(',');
      }
      p++;
      return { t: 'object', fields };
    }
    return fail(`unexpected '${t.v}'`);
  }

  function body(closing: boolean): (Attr | Block)[] {
    const items: (Attr | Block)[] = [];
    while (p < toks.length && !(closing && isPunct('}'))) {
      const name = peek()!;
      if (name.t !== 'ident') fail(`expected an attribute or block name, found '${name.v}'`);
      p++;
      if (isPunct('=')) {
        if (name.v.includes('.')) fail(`attribute name '${name.v}' cannot contain '.'`);
        p++;
        items.push({ kind: 'attr', name: name.v, value: expr(), line: name.line });
        continue;
      }
      let label: string | undefined;
      if (peek()?.t === 'string') label = toks[p++]!.v;
      expect('{');
      const inner = body(true);
      expect('}');
      items.push(
        label === undefined
          ? { kind: 'block', name: name.v, body: inner, line: name.line }
          : { kind: 'block', name: name.v, label, body: inner, line: name.line },
      );
    }
    if (closing && !isPunct('}')) fail("missing '}'");
    return items;
  }
  return body(false);
}

/** Allowed arguments and blocks per component (from the Alloy component reference), and its exports. */
interface BlockSpec {
  readonly args: readonly string[];
  readonly required?: readonly string[];
  readonly blocks?: Readonly<Record<string, BlockSpec>>;
}
interface ComponentSpec extends BlockSpec {
  readonly exports: readonly string[];
}

const OUTPUT: BlockSpec = { args: ['metrics', 'logs', 'traces'] };
const DEBUG_METRICS: BlockSpec = { args: ['disable_high_cardinality_metrics', 'level'] };
const TLS: BlockSpec = {
  args: [
    'insecure',
    'insecure_skip_verify',
    'ca_file',
    'ca_pem',
    'cert_file',
    'cert_pem',
    'key_file',
    'key_pem',
    'server_name',
    'min_version',
    'max_version',
  ],
};
const SERVER: BlockSpec = {
  args: [
    'endpoint',
    'transport',
    'max_recv_msg_size',
    'max_concurrent_streams',
    'read_buffer_size',
    'write_buffer_size',
    'include_metadata',
    'traces_url_path',
    'metrics_url_path',
    'logs_url_path',
  ],
  blocks: { tls: TLS },
};

export const ALLOY_COMPONENTS: Readonly<Record<string, ComponentSpec>> = {
  'otelcol.receiver.otlp': {
    args: [],
    blocks: { grpc: SERVER, http: SERVER, output: OUTPUT, debug_metrics: DEBUG_METRICS },
    exports: [],
  },
  'otelcol.processor.memory_limiter': {
    args: ['check_interval', 'limit', 'spike_limit', 'limit_percentage', 'spike_limit_percentage'],
    required: ['check_interval'],
    blocks: { output: OUTPUT, debug_metrics: DEBUG_METRICS },
    exports: ['input'],
  },
  'otelcol.processor.groupbyattrs': {
    args: ['keys'],
    blocks: { output: OUTPUT, debug_metrics: DEBUG_METRICS },
    exports: ['input'],
  },
  'otelcol.processor.transform': {
    args: ['error_mode'],
    blocks: {
      trace_statements: {
        args: ['context', 'statements', 'conditions', 'error_mode'],
        required: ['statements'],
      },
      metric_statements: {
        args: ['context', 'statements', 'conditions', 'error_mode'],
        required: ['statements'],
      },
      log_statements: {
        args: ['context', 'statements', 'conditions', 'error_mode'],
        required: ['statements'],
      },
      output: OUTPUT,
      debug_metrics: DEBUG_METRICS,
    },
    exports: ['input'],
  },
  'otelcol.processor.batch': {
    args: [
      'timeout',
      'send_batch_size',
      'send_batch_max_size',
      'metadata_keys',
      'metadata_cardinality_limit',
    ],
    blocks: { output: OUTPUT, debug_metrics: DEBUG_METRICS },
    exports: ['input'],
  },
  'otelcol.exporter.prometheus': {
    args: [
      'include_target_info',
      'include_scope_info',
      'include_scope_labels',
      'gc_frequency',
      'forward_to',
      'add_metric_suffixes',
      'resource_to_telemetry_conversion',
    ],
    required: ['forward_to'],
    exports: ['input'],
  },
  'otelcol.exporter.otlphttp': {
    args: ['metrics_endpoint', 'logs_endpoint', 'traces_endpoint', 'encoding'],
    blocks: {
      client: {
        args: [
          'endpoint',
          'read_buffer_size',
          'write_buffer_size',
          'timeout',
          'headers',
          'compression',
          'auth',
        ],
        required: ['endpoint'],
        blocks: { tls: TLS },
      },
      sending_queue: { args: ['enabled', 'num_consumers', 'queue_size', 'block_on_overflow', 'sizer'] },
      retry_on_failure: {
        args: [
          'enabled',
          'initial_interval',
          'randomization_factor',
          'multiplier',
          'max_interval',
          'max_elapsed_time',
        ],
      },
      debug_metrics: DEBUG_METRICS,
    },
    exports: ['input'],
  },
  'prometheus.remote_write': {
    args: ['external_labels'],
    blocks: {
      endpoint: {
        args: [
          'name',
          'url',
          'remote_timeout',
          'headers',
          'send_exemplars',
          'send_native_histograms',
          'bearer_token',
          'bearer_token_file',
          'proxy_url',
        ],
        required: ['url'],
        blocks: { basic_auth: { args: ['username', 'password', 'password_file'] }, tls_config: TLS },
      },
      wal: { args: ['truncate_frequency', 'min_keepalive_time', 'max_keepalive_time'] },
    },
    exports: ['receiver'],
  },
};

const STDLIB_CALLS = [
  'sys.env',
  'env',
  'concat',
  'coalesce',
  'format',
  'join',
  'split',
  'to_lower',
  'to_upper',
  'trim',
];

export interface AlloyProblem {
  readonly line: number;
  readonly message: string;
}

function checkBlock(b: Block, spec: BlockSpec, where: string, problems: AlloyProblem[]): void {
  const seen = new Set<string>();
  for (const item of b.body) {
    if (item.kind === 'attr') {
      if (!spec.args.includes(item.name))
        problems.push({ line: item.line, message: `${where}: unknown argument '${item.name}'` });
      if (seen.has(item.name))
        problems.push({ line: item.line, message: `${where}: '${item.name}' set twice` });
      seen.add(item.name);
    } else {
      const inner = spec.blocks?.[item.name];
      if (!inner) problems.push({ line: item.line, message: `${where}: unknown block '${item.name}'` });
      else checkBlock(item, inner, `${where}.${item.name}`, problems);
    }
  }
  for (const r of spec.required ?? [])
    if (!seen.has(r)) problems.push({ line: b.line, message: `${where}: missing required argument '${r}'` });
}

function refs(e: Expr, out: Array<{ path: string; line: number }>, calls: string[]): void {
  if (e.t === 'ref') out.push({ path: e.path, line: e.line });
  else if (e.t === 'list') for (const x of e.items) refs(x, out, calls);
  else if (e.t === 'object') for (const x of e.fields.values()) refs(x, out, calls);
  else if (e.t === 'call') {
    calls.push(e.fn);
    for (const x of e.args) refs(x, out, calls);
  }
}

function collectRefs(
  items: readonly (Attr | Block)[],
  out: Array<{ path: string; line: number }>,
  calls: string[],
) {
  for (const i of items) {
    if (i.kind === 'attr') refs(i.value, out, calls);
    else collectRefs(i.body, out, calls);
  }
}

/** Check a parsed Alloy file; returns every problem (empty = valid). */
export function checkAlloy(items: readonly (Attr | Block)[]): AlloyProblem[] {
  const problems: AlloyProblem[] = [];
  const declared = new Map<string, ComponentSpec>();
  for (const item of items) {
    if (item.kind !== 'block') {
      problems.push({ line: item.line, message: `top-level attribute '${item.name}' is not allowed` });
      continue;
    }
    const spec = ALLOY_COMPONENTS[item.name];
    if (!spec) {
      problems.push({ line: item.line, message: `unknown component '${item.name}'` });
      continue;
    }
    if (item.label === undefined || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(item.label)) {
      problems.push({ line: item.line, message: `${item.name} needs a label such as "default"` });
      continue;
    }
    const id = `${item.name}.${item.label}`;
    if (declared.has(id)) problems.push({ line: item.line, message: `${id} declared twice` });
    declared.set(id, spec);
    checkBlock(item, spec, id, problems);
  }
  const found: Array<{ path: string; line: number }> = [];
  const calls: string[] = [];
  collectRefs(items, found, calls);
  for (const fn of calls)
    if (!STDLIB_CALLS.includes(fn)) problems.push({ line: 0, message: `unknown function ${fn}` });
  for (const r of found) {
    const dot = r.path.lastIndexOf('.');
    const target = declared.get(r.path.slice(0, dot));
    if (!target) problems.push({ line: r.line, message: `reference ${r.path} names no declared component` });
    else if (!target.exports.includes(r.path.slice(dot + 1)))
      problems.push({
        line: r.line,
        message: `${r.path.slice(0, dot)} exports no '${r.path.slice(dot + 1)}'`,
      });
  }
  // Every component that consumes data must be reached from somewhere.
  const referenced = new Set(found.map((r) => r.path.slice(0, r.path.lastIndexOf('.'))));
  for (const [id, spec] of declared)
    if (spec.exports.length > 0 && !referenced.has(id))
      problems.push({ line: 0, message: `${id} is declared but nothing sends data to it` });
  return problems;
}
