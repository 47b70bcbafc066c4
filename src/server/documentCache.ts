import type { TextDocument } from 'vscode-languageserver-textdocument';
import { loadConfig, type ProjectLoad, type SettingsLoad } from '../core/config/load';
import { configKindOf } from '../core/config/schemas';

export type Loaded = ProjectLoad | SettingsLoad;

/** One load per document version: diagnostics, hovers and code actions share it. */
export class DocumentCache {
  private readonly entries = new Map<string, { version: number; loaded: Loaded }>();

  get(document: TextDocument): Loaded {
    const hit = this.entries.get(document.uri);
    if (hit && hit.version === document.version) return hit.loaded;
    const loaded = loadConfig(configKindOf(decodeURIComponent(document.uri)), document.getText());
    this.entries.set(document.uri, { version: document.version, loaded });
    return loaded;
  }

  forget(uri: string): void {
    this.entries.delete(uri);
  }
}
