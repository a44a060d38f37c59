/**
 * JSON Schemas for CDS Hooks 2.0 order-sign and order-select requests (CDS Hooks library 1.0.1
 * contexts, CRD profile-bundle-request). They check the envelope the pipeline relies on; unknown
 * fields are ignored (CRD §hook-23). FHIR content deeper than the envelope is read defensively.
 */

const resource = {
  type: 'object',
  required: ['resourceType'],
  properties: { resourceType: { type: 'string', pattern: '^[A-Z][A-Za-z]{1,63}$' }, id: { type: 'string', pattern: '^[A-Za-z0-9\\-.]{1,64}$' } },
};

function draftOrdersSchema(maxOrders: number) {
  return {
    type: 'object',
    required: ['resourceType', 'entry'],
    properties: {
      resourceType: { const: 'Bundle' },
      type: { type: 'string' },
      entry: {
        type: 'array',
        minItems: 1,
        maxItems: maxOrders,
        items: {
          type: 'object',
          required: ['resource'],
          properties: {
            fullUrl: { type: 'string' },
            resource: { ...resource, required: ['resourceType', 'id'] },
          },
        },
      },
    },
  };
}

export function hookRequestSchema(hook: 'order-sign' | 'order-select', maxOrders: number): object {
  const context: Record<string, unknown> = {
    type: 'object',
    required: hook === 'order-select' ? ['userId', 'patientId', 'draftOrders', 'selections'] : ['userId', 'patientId', 'draftOrders'],
    properties: {
      userId: { type: 'string', pattern: '^[A-Za-z]+/[A-Za-z0-9\\-.]{1,64}$' },
      patientId: { type: 'string', pattern: '^[A-Za-z0-9\\-.]{1,64}$' },
      encounterId: { type: 'string', pattern: '^[A-Za-z0-9\\-.]{1,64}$' },
      draftOrders: draftOrdersSchema(maxOrders),
      ...(hook === 'order-select'
        ? { selections: { type: 'array', minItems: 1, maxItems: maxOrders, items: { type: 'string', pattern: '^[A-Za-z]+/[A-Za-z0-9\\-.]{1,64}$' } } }
        : {}),
    },
  };
  return {
    type: 'object',
    required: ['hook', 'hookInstance', 'context'],
    properties: {
      hook: { const: hook },
      hookInstance: { type: 'string', minLength: 1, maxLength: 128 },
      fhirServer: { type: 'string', format: 'uri', pattern: '^https?://' },
      fhirAuthorization: {
        type: 'object',
        required: ['access_token', 'token_type'],
        properties: {
          access_token: { type: 'string', minLength: 1, maxLength: 8192 },
          token_type: { type: 'string', pattern: '^[Bb][Ee][Aa][Rr][Ee][Rr]$' },
          expires_in: { type: 'integer' },
          scope: { type: 'string' },
          subject: { type: 'string' },
          patient: { type: 'string' },
        },
      },
      context,
      prefetch: {
        type: 'object',
        maxProperties: 64,
        additionalProperties: { anyOf: [{ type: 'null' }, resource] },
      },
      extension: { type: 'object' },
    },
    // draft-07 "dependencies" (the Ajv class implements draft-07; it silently ignored 2019-09's dependentRequired).
    dependencies: { fhirAuthorization: ['fhirServer'] },
  };
}
