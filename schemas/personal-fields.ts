// The personal text fields that may travel encrypted (crypto-shredding, CONTRACTS.md) and whose
// key encrypts each: the column naming its author. Pure data, browser-safe.

export const PERSONAL_FIELDS: Readonly<Record<string, { readonly column: string; readonly subject: string }>> = {
  tasks: { column: 'description', subject: 'created_by' },
  comments: { column: 'body', subject: 'author_id' },
};
