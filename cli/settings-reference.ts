// The README reference of each service's settings is rendered from the same declaration its
// loadConfig reads and its `--help` prints (lib/config.ts). `npm run docs:settings` rewrites the
// marked block in each README; cli/help.test.ts fails when one is out of date.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ARCHIVER_SETTING_LIST, LOADER_SETTING_LIST } from '../analytics/config.js';
import { AUDIT_SETTING_LIST } from '../audit/config.js';
import { BROKER_SETTING_LIST } from '../broker/config.js';
import { CAPTURE_SETTING_LIST } from '../capture/config.js';
import { GDPR_SETTING_LIST } from '../gdpr/config.js';
import { BOARD_SETTING_LIST } from './commands/board.js';
import { type AnySetting, settingsTable, uniqueSettings } from '../lib/config.js';
import { CONSUMER_SETTINGS } from '@taskflow/stream';
import { NOTIFICATION_SETTING_LIST } from '../notifications/config.js';
import { ROUTER_SETTING_LIST } from '../router/config.js';
import { SEARCH_SETTING_LIST } from '../search/config.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export interface SettingsReference {
  /** README path from the repository root. */
  readme: string;
  /** Where the list is declared, named in the block's marker. */
  declaredIn: string;
  settings: readonly AnySetting[];
}

export const SETTINGS_REFERENCES: readonly SettingsReference[] = [
  { readme: 'capture/README.md', declaredIn: 'capture/config.ts', settings: CAPTURE_SETTING_LIST },
  { readme: 'router/README.md', declaredIn: 'router/config.ts', settings: ROUTER_SETTING_LIST },
  { readme: 'broker/README.md', declaredIn: 'broker/config.ts', settings: BROKER_SETTING_LIST },
  { readme: 'packages/stream/README.md', declaredIn: 'packages/stream/src/consumer/config.ts', settings: Object.values(CONSUMER_SETTINGS) },
  { readme: 'search/README.md', declaredIn: 'search/config.ts', settings: SEARCH_SETTING_LIST },
  { readme: 'audit/README.md', declaredIn: 'audit/config.ts', settings: AUDIT_SETTING_LIST },
  { readme: 'notifications/README.md', declaredIn: 'notifications/config.ts', settings: NOTIFICATION_SETTING_LIST },
  { readme: 'gdpr/README.md', declaredIn: 'gdpr/config.ts', settings: GDPR_SETTING_LIST },
  { readme: 'clients/demo-board/README.md', declaredIn: 'cli/commands/board.ts', settings: BOARD_SETTING_LIST },
  // The archiver's and the loader's together: the help tells which reads which.
  { readme: 'analytics/README.md', declaredIn: 'analytics/config.ts', settings: uniqueSettings(ARCHIVER_SETTING_LIST, LOADER_SETTING_LIST) },
];

const BEGIN = /<!-- settings:begin[^>]*-->\n/;
const END = '<!-- settings:end -->';

/** The README with its settings block rendered from the declaration; throws when it has no block. */
export function renderReference(readme: string, ref: SettingsReference): string {
  const begin = BEGIN.exec(readme);
  const end = readme.indexOf(END);
  if (!begin || end < begin.index) throw new Error(`${ref.readme} has no "<!-- settings:begin -->" … "${END}" block`);
  const marker = `<!-- settings:begin (generated from ${ref.declaredIn} by \`npm run docs:settings\`; edit the declaration, not this table) -->\n`;
  return `${readme.slice(0, begin.index)}${marker}${settingsTable(ref.settings)}\n${readme.slice(end)}`;
}

export function readReadme(ref: SettingsReference): string {
  return readFileSync(join(ROOT, ref.readme), 'utf8');
}

export function writeReferences(): string[] {
  const changed: string[] = [];
  for (const ref of SETTINGS_REFERENCES) {
    const before = readReadme(ref);
    const after = renderReference(before, ref);
    if (after !== before) {
      writeFileSync(join(ROOT, ref.readme), after);
      changed.push(ref.readme);
    }
  }
  return changed;
}
