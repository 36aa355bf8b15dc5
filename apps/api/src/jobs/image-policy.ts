// Which images jobs may run: registry/repository patterns, and optionally only images pinned by digest.
import { BerthError } from '@berth/contracts';

export interface ImagePolicy {
  /** `*` stands for one path part (no `/`), `**` for any run of parts; Docker Hub names are matched in full. */
  allow: readonly string[];
  requireDigest: boolean;
}

/** `berth/x:1` → `docker.io/berth/x`, `ubuntu` → `docker.io/library/ubuntu`; tag and digest dropped. */
export function repositoryOf(ref: string): string {
  const name = ref.split('@')[0]!.replace(/:[\w][\w.-]{0,127}$/, '');
  const parts = name.split('/');
  const hasRegistry = parts.length > 1 && (/[.:]/.test(parts[0]!) || parts[0] === 'localhost');
  if (hasRegistry) return name;
  return parts.length === 1 ? `docker.io/library/${name}` : `docker.io/${name}`;
}

const compiled = new Map<string, RegExp>();

function patternRegex(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (!re) {
    re = new RegExp(`^${patternBody(pattern)}$`);
    compiled.set(pattern, re);
  }
  return re;
}

function patternBody(pattern: string): string {
  return pattern
    .split(/(\*\*|\*)/)
    .map((part) => (part === '**' ? '.*' : part === '*' ? '[^/]*' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
}

/**
 * Images each policy let through, remembered so a stream of submits of one image checks it once. Only allowed refs
 * are kept (a refusal is checked afresh), at most `passedLimit` per policy: past that the set starts over.
 */
const passed = new WeakMap<ImagePolicy, Set<string>>();
const passedLimit = 1024;

/** Throws IMAGE_NOT_ALLOWED, saying which rule it broke. */
export function checkImage(policy: ImagePolicy, ref: string): void {
  let seen = passed.get(policy);
  if (seen?.has(ref)) return;
  const repo = repositoryOf(ref);
  if (!policy.allow.some((p) => patternRegex(p).test(repo))) {
    throw new BerthError('IMAGE_NOT_ALLOWED', `${repo} is not in the image allowlist`, {
      image: ref,
      allow: policy.allow,
    });
  }
  if (policy.requireDigest && !/@sha256:[0-9a-f]{64}$/.test(ref)) {
    throw new BerthError('IMAGE_NOT_ALLOWED', `${ref} is not pinned: images must name a digest (@sha256:…)`, {
      image: ref,
    });
  }
  if (!seen || seen.size >= passedLimit) {
    seen = new Set();
    passed.set(policy, seen);
  }
  seen.add(ref);
}
