// Structural type of a change event envelope (schemas/CONTRACTS.md): enough for the SDK and
// applications to route on, while `data` stays open so schema additions never break builds.
export interface ChangeEvent {
  readonly specversion: '1.0';
  readonly id: string;
  readonly source: string;
  readonly type: string;
  readonly time: string;
  readonly subject?: string;
  readonly dataschema?: string;
  readonly datacontenttype?: string;
  readonly workspaceid: string;
  readonly projectid?: string;
  readonly data: {
    readonly op: string;
    readonly table: string;
    readonly key?: Readonly<Record<string, unknown>>;
    readonly before?: Readonly<Record<string, unknown>> | null;
    readonly after?: Readonly<Record<string, unknown>> | null;
    readonly changed?: readonly string[];
    readonly omitted?: readonly string[];
    readonly [field: string]: unknown;
  };
}
