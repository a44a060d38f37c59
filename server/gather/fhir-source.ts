import { Client } from 'fhir-kit-client';
import type { Bundle, FhirResource } from 'fhir/r4.js';
import { createFhirKitGuard } from '../security/fhir-server-guard.ts';

/**
 * Reads from the EHR's FHIR server with the hook's bearer token, under one deadline shared by
 * every query of the hook call. Only the fhirServer's own origin is ever contacted (paging links
 * included) and redirects are not followed.
 */
export interface FhirSource {
  readonly baseUrl: string;
  /**
   * Runs a relative search ("Condition?patient=1") and follows `next` links up to maxPages. More
   * pages than that is a failure, unless `truncate` says the first maxPages are all that is wanted.
   */
  search(query: string, maxPages: number, truncate?: boolean): Promise<FhirResource[]>;
  /** Reads "Type/id"; undefined when the server says it does not exist. */
  read(reference: string): Promise<FhirResource | undefined>;
  /** Follows the `next` links of a Bundle that arrived in prefetch. */
  remainingPages(bundle: Bundle, maxPages: number): Promise<FhirResource[]>;
}

export class FhirQueryError extends Error {
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.name = 'FhirQueryError';
    this.status = status;
  }
}

function isResource(value: unknown): value is FhirResource {
  return typeof value === 'object' && value !== null && typeof (value as { resourceType?: unknown }).resourceType === 'string';
}

function entriesOf(bundle: Bundle): FhirResource[] {
  const out: FhirResource[] = [];
  for (const entry of Array.isArray(bundle.entry) ? bundle.entry : []) {
    if (isResource(entry?.resource)) out.push(entry.resource);
  }
  return out;
}

function nextLink(bundle: Bundle): string | undefined {
  const link = Array.isArray(bundle.link) ? bundle.link.find((l) => l?.relation === 'next') : undefined;
  return typeof link?.url === 'string' ? link.url : undefined;
}

/** The error, without anything that might carry the token (fhir-kit-client errors hold the request). */
function describeFailure(error: unknown, signal: AbortSignal): FhirQueryError {
  if (signal.aborted) return new FhirQueryError('deadline exceeded');
  const status = (error as { response?: { status?: number } })?.response?.status;
  if (typeof status === 'number') return new FhirQueryError(`HTTP ${status}`, status);
  const name = (error as { name?: string })?.name ?? 'Error';
  if (name === 'BlockedRequestError') return new FhirQueryError('blocked: not the fhirServer origin');
  const code = (error as { cause?: { code?: string } })?.cause?.code;
  return new FhirQueryError(code ? `network error (${code})` : `request failed (${name})`);
}

export function createFhirSource(options: { baseUrl: string; accessToken?: string; signal: AbortSignal }): FhirSource {
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const guard = createFhirKitGuard(baseUrl);
  const client = new Client({
    baseUrl,
    customHeaders: {
      accept: 'application/fhir+json',
      ...(options.accessToken ? { authorization: `Bearer ${options.accessToken}` } : {}),
    },
    requestOptions: guard.requestOptions,
    requestSigner: guard.requestSigner,
  });
  const { signal } = options;

  async function get(url: string): Promise<unknown> {
    if (signal.aborted) throw new FhirQueryError('deadline exceeded');
    try {
      return await client.request(url, { options: { signal } });
    } catch (error) {
      throw describeFailure(error, signal);
    }
  }

  async function follow(bundle: Bundle, maxPages: number, truncate = false): Promise<FhirResource[]> {
    const out: FhirResource[] = [];
    let page = bundle;
    for (let pages = 1; pages < maxPages; pages++) {
      const next = nextLink(page);
      if (!next) return out;
      const result = await get(next);
      if (!isResource(result) || result.resourceType !== 'Bundle') throw new FhirQueryError('a next page was not a Bundle');
      out.push(...entriesOf(result));
      page = result;
    }
    if (nextLink(page) && !truncate) throw new FhirQueryError(`more than ${maxPages} pages`);
    return out;
  }

  return {
    baseUrl,
    async search(query, maxPages, truncate = false) {
      const result = await get(query);
      if (!isResource(result) || result.resourceType !== 'Bundle') throw new FhirQueryError('the search did not return a Bundle');
      if (result.resourceType === 'Bundle' && result.type !== 'searchset' && result.type !== undefined) {
        // Some servers answer errors as a Bundle of OperationOutcomes; treat anything but a searchset as failure.
        throw new FhirQueryError(`the search returned a ${result.type} Bundle`);
      }
      return [...entriesOf(result), ...(await follow(result, maxPages, truncate))];
    },
    async read(reference) {
      try {
        const result = await get(reference);
        if (!isResource(result)) throw new FhirQueryError('the read did not return a resource');
        return result;
      } catch (error) {
        if (error instanceof FhirQueryError && (error.status === 404 || error.status === 410)) return undefined;
        throw error;
      }
    },
    remainingPages(bundle, maxPages) {
      return follow(bundle, maxPages);
    },
  };
}
