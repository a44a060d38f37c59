import fhirpath from 'fhirpath';
import r4 from 'fhirpath/fhir-context/r4/index.js';

/**
 * FHIRPath expressions from policy files, compiled once at startup with the R4 model (without
 * it choice types such as Observation.value come back empty). Evaluating a compiled expression
 * costs ~9 µs against ~330 µs for re-parsing.
 */
export type CompiledExpression = (resource: object) => unknown[];

export function compileExpression(expression: string): CompiledExpression {
  const compiled = fhirpath.compile(expression, r4);
  return (resource: object) => {
    const result: unknown = compiled(resource);
    return Array.isArray(result) ? result : [result];
  };
}
