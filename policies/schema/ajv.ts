import { Ajv, type Options } from 'ajv';
import addFormatsModule from 'ajv-formats';

type FormatsPlugin = (ajv: Ajv) => Ajv;

// ajv-formats is CommonJS; under NodeNext its default export arrives wrapped in the namespace.
const addFormats = ((addFormatsModule as unknown as { default?: FormatsPlugin }).default ??
  (addFormatsModule as unknown as FormatsPlugin)) as FormatsPlugin;

/** An ajv instance with the standard formats (uri, date-time, …), used for every JSON Schema here. */
export function createAjv(options: Options = {}): Ajv {
  const ajv = new Ajv(options);
  addFormats(ajv);
  return ajv;
}
