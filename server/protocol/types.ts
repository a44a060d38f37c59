import type { Bundle, FhirResource } from 'fhir/r4.js';

/** CDS Hooks 2.0 request bodies, as this service reads them after validation. */
export interface FhirAuthorization {
  access_token: string;
  token_type: string;
  expires_in: number;
  scope: string;
  subject: string;
  patient?: string;
}

export interface OrderHookContext {
  userId: string;
  patientId: string;
  encounterId?: string;
  draftOrders: Bundle;
  /** order-select only: the newly selected orders ("MedicationRequest/123"). */
  selections?: string[];
}

export type PrefetchValue = FhirResource | null;

export interface HookRequest {
  hook: string;
  hookInstance: string;
  fhirServer?: string;
  fhirAuthorization?: FhirAuthorization;
  context: OrderHookContext;
  prefetch?: Record<string, PrefetchValue>;
  extension?: Record<string, unknown>;
}

/** Da Vinci CRD request configuration (davinci-crd.configuration), keyed by option code. */
export type CrdConfiguration = Record<string, boolean | number>;

export interface CardLink {
  label: string;
  url: string;
  type: 'absolute' | 'smart';
  appContext?: string;
}

/** A cdshooks-card-type coding: code and system are both required for CRD (§resp-5). */
export interface CardTopic {
  system: string;
  code: string;
  display?: string;
}

export interface Card {
  uuid: string;
  summary: string;
  detail?: string;
  indicator: 'info' | 'warning' | 'critical';
  source: { label: string; url?: string; topic: CardTopic };
  links?: CardLink[];
  extension?: Record<string, unknown>;
}

export interface Action {
  type: 'create' | 'update' | 'delete';
  description: string;
  resource?: FhirResource;
  resourceId?: string;
}

export interface HookResponse {
  cards: Card[];
  systemActions?: Action[];
}

export interface PrefetchTemplateService {
  hook: string;
  title?: string;
  description: string;
  id: string;
  prefetch?: Record<string, string>;
  extension?: Record<string, unknown>;
}
