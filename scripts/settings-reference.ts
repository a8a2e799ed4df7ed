// `npm run docs:settings`: rewrite the settings reference in each service README from its declaration.
import { writeReferences } from '../cli/settings-reference.js';

const changed = writeReferences();
console.log(changed.length ? `updated ${changed.join(', ')}` : 'every settings reference is up to date');
