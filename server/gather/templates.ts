import type { OrderHookContext } from '../protocol/types.ts';

/**
 * Renders CDS Hooks 2.0 prefetch templates: `{{context.<field>}}` for root-level primitive
 * context fields, and the user identifiers `{{userPractitionerId}}`, `{{userPractitionerRoleId}}`,
 * `{{userPatientId}}`, `{{userRelatedPersonId}}` derived from context.userId. A template with a
 * token that has no value cannot be satisfied: the key is skipped, not treated as a failure.
 */
export function renderTemplate(template: string, context: OrderHookContext): string | undefined {
  let unfilled = false;
  const rendered = template.replace(/\{\{\s*([^}]+?)\s*\}\}/g, (_match, token: string) => {
    const value = tokenValue(token, context);
    if (value === undefined) {
      unfilled = true;
      return '';
    }
    return encodeURIComponent(value);
  });
  return unfilled ? undefined : rendered;
}

function tokenValue(token: string, context: OrderHookContext): string | undefined {
  if (token.startsWith('context.')) {
    const value = (context as unknown as Record<string, unknown>)[token.slice('context.'.length)];
    return typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
  }
  const [type, id] = context.userId.split('/');
  const userTokens: Record<string, string> = {
    userPractitionerId: 'Practitioner',
    userPractitionerRoleId: 'PractitionerRole',
    userPatientId: 'Patient',
    userRelatedPersonId: 'RelatedPerson',
  };
  return userTokens[token] === type ? id : undefined;
}
