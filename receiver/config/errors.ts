// A config that cannot be used, with every issue by key path. Its own file so that the loader and the
// probe-argument normalizer (arg-keys.ts) can both use it without importing each other.

export interface ConfigIssue {
  /** Dotted key path, e.g. `exporters.otlp.protocol`; `(root)` for the whole document. */
  readonly path: string;
  readonly message: string;
}

export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];
  readonly source: string;
  constructor(source: string, issues: readonly ConfigIssue[]) {
    super(`invalid config ${source}:\n${issues.map((i) => `  ${i.path}: ${i.message}`).join('\n')}`);
    this.name = 'ConfigError';
    this.source = source;
    this.issues = issues;
  }
}
