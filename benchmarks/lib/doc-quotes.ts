// Docs that quote a benchmark figure name where it comes from: `(benchmarks/RESULTS.md, «section title»,
// YYYY-MM-DD)` — the section's heading in RESULTS.md and the day it ran; `, failed` after the date when the
// quoted run failed and the text says so instead of giving figures; `not yet run` instead of the date when
// the section is not in RESULTS.md yet and the text gives no figure. `benchmarks/RESULTS.md, section «…»`
// is read the same way. This checks every quote against the current RESULTS.md: the section exists, ran on
// the day quoted, and failed exactly when the quote says so. After RESULTS.md is regenerated, each quote of
// a re-run section fails the check until its figures and date are brought up to date, so no doc keeps a
// figure RESULTS.md no longer holds. A quote without a date is listed (an error with --strict).
//
//   node benchmarks/lib/doc-quotes.ts [--strict]   # every quote and what is wrong with it; exit 1 if any
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
  /** YYYY-MM-DD of the run quoted; none when `pending` or undated. */
  readonly date?: string;
  /** `not yet run`: the section is not in RESULTS.md yet, the text gives no figure. */
  readonly pending: boolean;
  readonly saysFailed: boolean;
}

export interface QuoteProblem {
  readonly quote: Quote;
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

const QUOTE =
  /benchmarks\/RESULTS\.md,\s+(?:section\s+)?«([^»]+)»(?:,\s+(\d{4}-\d{2}-\d{2}|not\s+yet\s+run)(,\s+failed)?)?/g;

const lineAt = (text: string, index: number): number => text.slice(0, index).split('\n').length;

export function quotesIn(file: string, markdown: string): Quote[] {
  // inline code shows the form, it does not quote (blanked, so positions and lines stay)
  const text = markdown.replace(/`[^`\n]*`/g, (m) => ' '.repeat(m.length));
  return [...text.matchAll(QUOTE)].map((m) => ({
    file,
    line: lineAt(text, m.index),
    title: m[1]!.replace(/\s+/g, ' ').trim(),
    ...(m[2] && /^\d/.test(m[2]) ? { date: m[2] } : {}),
    pending: m[2] !== undefined && !/^\d/.test(m[2]),
    saysFailed: m[3] !== undefined,
  }));
}

/** What is wrong with a quote, if anything; `strict` also refuses a quote without a date. */
export function checkQuote(
  q: Quote,
  sections: ReadonlyMap<string, ResultSection>,
  strict = false,
): string | undefined {
  const s = sections.get(q.title);
  if (q.pending)
    return s
      ? `section «${q.title}» has run (${s.date ?? 'day unrecorded'}): quote its figures and date`
      : undefined;
  if (!s) return `no section «${q.title}» in benchmarks/RESULTS.md`;
  if (!q.date)
    return strict
      ? `undated: section «${q.title}» ran on ${s.date ?? 'an unrecorded day'}; say so`
      : undefined;
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

export function checkDocs(root: string, strict = false): { quotes: Quote[]; problems: QuoteProblem[] } {
  const sections = resultSections(readFileSync(join(root, 'benchmarks/RESULTS.md'), 'utf8'));
  const quotes = docFiles(root).flatMap((f) => quotesIn(relative(root, f), readFileSync(f, 'utf8')));
  const problems = quotes.flatMap((quote) => {
    const problem = checkQuote(quote, sections, strict);
    return problem ? [{ quote, problem }] : [];
  });
  return { quotes, problems };
}

if (import.meta.main) {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const { quotes, problems } = checkDocs(root, process.argv.includes('--strict'));
  for (const q of quotes) {
    const p = problems.find((x) => x.quote === q)?.problem;
    const when = q.pending ? 'not yet run' : (q.date ?? 'undated');
    process.stdout.write(
      `${q.file}:${q.line}  «${q.title}» ${when}${q.saysFailed ? ', failed' : ''}: ${p ?? 'ok'}\n`,
    );
  }
  process.stdout.write(`${quotes.length} quotes, ${problems.length} problems\n`);
  process.exitCode = problems.length ? 1 : 0;
}
