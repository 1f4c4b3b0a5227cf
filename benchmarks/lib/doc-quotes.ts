// Docs that quote a benchmark figure name where it comes from: `(benchmarks/RESULTS.md, «section title»,
// YYYY-MM-DD)`, the section's heading in RESULTS.md and the day it ran (`, failed)` after the date when the
// quoted run failed and the text says so instead of giving figures; `not yet run` instead of the date when
// the section is not in RESULTS.md yet and the text gives no figure). This checks every such quote against
// the current RESULTS.md: the section exists, ran that day, and failed exactly when the quote says so. After
// RESULTS.md is regenerated, each quote of a re-run section fails the check until its figures and date are
// brought up to date, so no doc keeps a figure RESULTS.md no longer holds.
//
//   node benchmarks/lib/doc-quotes.ts     # lists every quote and what is wrong with it; exit 1 if anything is
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ResultSection {
  readonly title: string;
  /** UTC day it ran (YYYY-MM-DD), when recorded. */
  readonly date?: string;
  readonly failed: boolean;
}

export interface Quote {
  readonly file: string;
  readonly line: number;
  readonly title: string;
  /** YYYY-MM-DD, or undefined for `not yet run`. */
  readonly date?: string;
  readonly saysFailed: boolean;
}

export interface QuoteProblem {
  readonly quote: Quote | { readonly file: string; readonly line: number; readonly text: string };
  readonly problem: string;
}

/** The sections of a RESULTS.md text: `## title`, its `_Ran … at <ISO time>` line, `**Failed:**`. */
export function resultSections(md: string): Map<string, ResultSection> {
  const out = new Map<string, ResultSection>();
  const parts = md.split(/^## /m).slice(1);
  for (const p of parts) {
    const title = p.slice(0, p.indexOf('\n')).trim();
    const date = /^_Ran [\d.]+ s at (\d{4}-\d{2}-\d{2})T/m.exec(p)?.[1];
    out.set(title, { title, ...(date ? { date } : {}), failed: /^\*\*Failed:\*\*/m.test(p) });
  }
  return out;
}

const QUOTE = /\(benchmarks\/RESULTS\.md,\s+«([^»]+)»,\s+(\d{4}-\d{2}-\d{2}|not\s+yet\s+run)(,\s+failed)?\)/g;
/** Anything that starts like a quote, to catch malformed ones. */
const START = /benchmarks\/RESULTS\.md,\s+«/g;

const lineAt = (text: string, index: number): number => text.slice(0, index).split('\n').length;

export function quotesIn(file: string, markdown: string): { quotes: Quote[]; malformed: QuoteProblem[] } {
  // inline code shows the form, it does not quote (blanked, so positions and lines stay)
  const text = markdown.replace(/`[^`\n]*`/g, (m) => ' '.repeat(m.length));
  const quotes: Quote[] = [];
  const at = new Set<number>();
  for (const m of text.matchAll(QUOTE)) {
    at.add(m.index + 1);
    quotes.push({
      file,
      line: lineAt(text, m.index),
      title: m[1]!.replace(/\s+/g, ' ').trim(),
      ...(/^\d/.test(m[2]!) ? { date: m[2]! } : {}),
      saysFailed: m[3] !== undefined,
    });
  }
  const malformed: QuoteProblem[] = [];
  for (const m of text.matchAll(START))
    if (!at.has(m.index))
      malformed.push({
        quote: { file, line: lineAt(text, m.index), text: text.slice(m.index, m.index + 120) },
        problem: 'not of the form (benchmarks/RESULTS.md, «section title», YYYY-MM-DD)',
      });
  return { quotes, malformed };
}

export function checkQuote(q: Quote, sections: ReadonlyMap<string, ResultSection>): string | undefined {
  const s = sections.get(q.title);
  if (!q.date)
    return s
      ? `section «${q.title}» has run (${s.date ?? 'day unrecorded'}): quote its figures and date`
      : undefined;
  if (!s) return `no section «${q.title}» in benchmarks/RESULTS.md`;
  if (s.date !== q.date)
    return `section «${q.title}» ran on ${s.date ?? 'an unrecorded day'}, the quote says ${q.date}: update the figures and the date`;
  if (s.failed && !q.saysFailed) return `section «${q.title}» failed: quote no figure of it (say ", failed")`;
  if (!s.failed && q.saysFailed) return `section «${q.title}» passed: its figures can be quoted now`;
  return undefined;
}

/** Markdown files of the repo that may quote figures (all but RESULTS.md; node_modules and .git skipped). */
export function docFiles(root: string, dir = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
    const rel = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory() && e.name !== 'node_modules' && !e.name.startsWith('.'))
      out.push(...docFiles(root, rel));
    else if (e.isFile() && e.name.endsWith('.md') && rel !== 'benchmarks/RESULTS.md')
      out.push(join(root, rel));
  }
  return out.sort();
}

export function checkDocs(root: string): { quotes: Quote[]; problems: QuoteProblem[] } {
  const sections = resultSections(readFileSync(join(root, 'benchmarks/RESULTS.md'), 'utf8'));
  const quotes: Quote[] = [];
  const problems: QuoteProblem[] = [];
  for (const file of docFiles(root)) {
    const r = quotesIn(relative(root, file), readFileSync(file, 'utf8'));
    quotes.push(...r.quotes);
    problems.push(...r.malformed);
    for (const q of r.quotes) {
      const p = checkQuote(q, sections);
      if (p) problems.push({ quote: q, problem: p });
    }
  }
  return { quotes, problems };
}

if (import.meta.main) {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const { quotes, problems } = checkDocs(root);
  for (const q of quotes) {
    const p = problems.find((x) => x.quote === q)?.problem;
    process.stdout.write(
      `${q.file}:${q.line}  «${q.title}» ${q.date ?? 'not yet run'}${q.saysFailed ? ', failed' : ''}: ${p ?? 'ok'}\n`,
    );
  }
  for (const p of problems)
    if (!('title' in p.quote)) process.stdout.write(`${p.quote.file}:${p.quote.line}: ${p.problem}\n`);
  process.stdout.write(`${quotes.length} quotes, ${problems.length} problems\n`);
  process.exitCode = problems.length ? 1 : 0;
}
