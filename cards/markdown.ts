// Every character escapeMarkdown's replacements touch; most evidence text has none of them.
const NEEDS_ESCAPING = /[&<>\\`*_[\]|#~\n]/;

/**
 * Card detail is GitHub Flavored Markdown, which passes a subset of HTML through. Text that comes
 * from patient data or payloads is escaped so it can neither inject HTML nor break the layout.
 */
export function escapeMarkdown(text: string): string {
  if (!NEEDS_ESCAPING.test(text)) return text;
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/([\\`*_[\]|#~])/g, '\\$1')
    .replace(/\r?\n/g, ' ');
}

/** Cuts a one-line summary to CDS Hooks' "< 140 characters" without splitting a word if possible. */
export function fitSummary(text: string, max = 139): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max - 1);
  const space = cut.lastIndexOf(' ');
  return `${(space > max * 0.6 ? cut.slice(0, space) : cut).replace(/[\s,;:–-]+$/, '')}…`;
}
