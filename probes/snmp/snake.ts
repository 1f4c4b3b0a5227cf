// Kernel MIB names (CamelCase with acronyms: `TCPDSACKUndo`, `InCsumErrors`, `PAWSActive`) to
// snake_case metric name segments (`tcp_dsack_undo`, `in_csum_errors`, `paws_active`). Runs of capitals
// are split on the known acronyms first, so `TCPACKSkippedSynRecv` becomes `tcp_ack_skipped_syn_recv`,
// not `tcpack_skipped_syn_recv`. Used to build the static field table and for fields a newer kernel adds.

// Longest first: the splitter takes the longest acronym that prefixes the remaining capital run.
const ACRONYMS = [
  'DSACK',
  'MTUP',
  'PAWS',
  'SACK',
  'HMAC',
  'ECT0',
  'ECT1',
  'RTO',
  'TCP',
  'ACK',
  'MD5',
  'OFO',
  'SYN',
  'PLB',
  'DSS',
  'ECT',
  'MLD',
  'ICMP',
  'RST',
  'CE',
  'TS',
  'TW',
  'AO',
  'MP',
  'HP',
  'IP',
  'PF',
  'OK',
  'TX',
  'RX',
].sort((a, b) => b.length - a.length);

function splitCapsRun(run: string): string[] {
  const parts: string[] = [];
  let rest = run;
  while (rest.length > 0) {
    const a = ACRONYMS.find((x) => rest.startsWith(x));
    if (a) {
      parts.push(a);
      rest = rest.slice(a.length);
    } else {
      // Unknown run: keep the remainder together (`XYZ`).
      parts.push(rest);
      rest = '';
    }
  }
  return parts;
}

/** `TCPSynRetrans` → `tcp_syn_retrans`; `InType3` → `in_type3`; `ReasmOKs` → `reasm_oks`. */
export function snakeCase(name: string): string {
  // Mixed-case acronyms the kernel uses, normalised first.
  const n = name.replace('HMac', 'Hmac').replace('MLDv', 'Mldv');
  // Tokens: a capital run with a plural `s` (`OKs`, `RTOs`), a capital run not followed by a lower-case
  // letter (`TCP` in `TCPSyn`), a Capitalized or lower-case word with trailing digits, or digits.
  const re = /[A-Z]{2,}[0-9]*s(?![a-z])|[A-Z0-9]+(?![a-z])|[A-Z]?[a-z]+[0-9]*|[0-9]+/g;
  const words: string[] = [];
  for (const m of n.matchAll(re)) {
    const tok = m[0];
    if (/^[A-Z0-9]+s?$/.test(tok) && tok.length > 1) {
      const plural = tok.endsWith('s');
      const parts = splitCapsRun(plural ? tok.slice(0, -1) : tok);
      if (plural) parts[parts.length - 1] += 's';
      for (const p of parts) words.push(p.toLowerCase());
    } else {
      words.push(tok.toLowerCase());
    }
  }
  // Digits join the previous word (`type3`, `md5`, `ect1`).
  const out: string[] = [];
  for (const w of words) {
    const prev = out[out.length - 1];
    if (prev !== undefined && /^[0-9]+$/.test(w)) out[out.length - 1] = prev + w;
    else out.push(w);
  }
  return out.join('_');
}
