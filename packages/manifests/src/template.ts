// The command template language: `{{name}}` placeholders inside argument-array tokens.

/** Values berth fills in itself; recipes may use them, users cannot set them. */
export const BUILTINS = ['gpus', 'job_id', 'attempt'] as const;

const PLACEHOLDER = /\{\{([a-z][a-z0-9_:]*)\}\}/g;
const FLAG_TOKEN = /^\{\{flag:([a-z][a-z0-9_]*)\}\}$/;
const WHOLE_TOKEN = /^\{\{([a-z][a-z0-9_]*)\}\}$/;

export type TemplateToken =
  | { kind: 'literal'; text: string }
  /** `{{flag:name}}`: `--name value`, `--name` for a true bool, nothing when unset or false. */
  | { kind: 'flag'; name: string }
  /** `{{name}}` alone: the value as one token (an argv list spliced), nothing when unset. */
  | { kind: 'whole'; name: string }
  /** A token with placeholders inside: substituted, dropped when any of them is unset. */
  | { kind: 'mixed'; text: string; names: string[] };

export function parseToken(token: string): TemplateToken {
  const flag = FLAG_TOKEN.exec(token);
  if (flag) return { kind: 'flag', name: flag[1]! };
  const whole = WHOLE_TOKEN.exec(token);
  if (whole) return { kind: 'whole', name: whole[1]! };
  const names = [...token.matchAll(PLACEHOLDER)].map((m) => m[1]!);
  if (names.length === 0) return { kind: 'literal', text: token };
  return { kind: 'mixed', text: token, names };
}

/** Names a template token refers to; `flag:` inside a larger token is an error the loader reports. */
export function referencedNames(token: TemplateToken): string[] {
  switch (token.kind) {
    case 'literal':
      return [];
    case 'flag':
    case 'whole':
      return [token.name];
    case 'mixed':
      return token.names;
  }
}

export function substitute(text: string, lookup: (name: string) => string): string {
  return text.replace(PLACEHOLDER, (_m, name: string) => lookup(name));
}
