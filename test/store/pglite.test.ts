import { pgliteEngine } from './helpers.ts';
import { storeSuite } from './suite.ts';

storeSuite(pgliteEngine);
