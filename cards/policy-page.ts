import type { PolicyDocument } from '../policies/engine/types.ts';

function html(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * The human-readable page a card links to: the policy as encoded, in the source's own words,
 * with its sections, effective dates and history, so a clinician can see exactly what was checked.
 */
export function policyPage(doc: PolicyDocument, payerName: string): string {
  const criteria = doc.criteria
    .map(
      (c) =>
        `<li><strong>${c.number !== undefined ? `${c.number}. ` : ''}${html(c.label)}</strong> <small>(${html(c.section)})</small><br><q>${html(c.text)}</q></li>`,
    )
    .join('\n');
  const rules = doc.coverageRules.map((r) => `<li><strong>${html(r.reason)}</strong> <small>(${html(r.section)})</small><br><q>${html(r.text)}</q></li>`).join('\n');
  const history = doc.history.map((h) => `<li>${html(h.date)}${h.version ? ` (version ${html(h.version)})` : ''}: ${html(h.summary)}</li>`).join('\n');
  const notes = [...(doc.notes ?? []), ...(doc.instructions ?? [])].map((n) => `<li>${html(n.text)} <small>(${html(n.section)})</small></li>`).join('\n');
  const companions = (doc.companionServices ?? []).map((c) => `<li><strong>${html(c.label)}</strong> <small>(${html(c.section)})</small><br><q>${html(c.text)}</q></li>`).join('\n');
  const definitions = (doc.definitions ?? []).map((d) => `<dt>${html(d.term)} <small>(${html(d.section)})</small></dt><dd>${html(d.text)}</dd>`).join('\n');
  const effective = `${doc.effective.start ?? 'the start'} to ${doc.effective.end ?? 'now'}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${html(doc.policyNumber)} ${html(doc.title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}q{color:#333}small{color:#666}</style></head>
<body>
<h1>${html(payerName)} ${html(doc.policyNumber)}: ${html(doc.title)}</h1>
<p>Version ${html(doc.version)} (${html(doc.versionDate)}); in effect ${html(effective)}. Product lines: ${html(doc.productLines.map((l) => l.name).join(', ') || 'all')}. Prior authorization: ${doc.priorAuth === 'always' ? 'required' : 'not required'}.</p>
${rules ? `<h2>Coverage rules</h2><ul>${rules}</ul>` : ''}
<h2>Criteria</h2><ul>${criteria}</ul>
${companions ? `<h2>Services ordered with the therapy</h2><ul>${companions}</ul>` : ''}
${notes ? `<h2>Notes and instructions</h2><ul>${notes}</ul>` : ''}
${definitions ? `<h2>Definitions</h2><dl>${definitions}</dl>` : ''}
<h2>History</h2><ul>${history}</ul>
<p><small>Source: ${html(doc.source.publisher)}, ${html(doc.source.document)}${(doc.source.links ?? []).map((l) => ` · <a href="${html(l.url)}">${html(l.label)}</a>`).join('')}</small></p>
</body></html>`;
}
