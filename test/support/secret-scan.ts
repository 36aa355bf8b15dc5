// Looks for a secret in collected text in every form it could take there: raw, URL-encoded, JSON-escaped, and base64
// (standard and URL-safe) of any string that contains it — at each of the three byte alignments, so the secret is found
// inside a base64 blob of, say, `user:secret` or a JSON auth object without knowing what surrounds it.

export interface SecretForm {
  name: string;
  text: string;
}

/** Places text was collected from; `text` may be a Buffer (searched as latin1, so bytes match one to one). */
export interface Haystack {
  where: string;
  text: string | Buffer;
}

export interface Sighting {
  where: string;
  form: string;
  /** Up to 60 characters either side of the hit. */
  context: string;
}

/** The base64 characters that depend on `secret`'s bytes alone when it starts `shift` bytes into a 3-byte group. */
function base64Core(secret: Buffer, shift: number, alphabet: 'base64' | 'base64url'): string {
  const encoded = Buffer.concat([Buffer.alloc(shift, 0x20), secret]).toString(alphabet);
  const firstPure = shift === 0 ? 0 : 4;
  const lastPure = Math.floor((shift + secret.length) / 3) * 4;
  return encoded.slice(firstPure, lastPure);
}

export function secretForms(secret: string, extra: SecretForm[] = []): SecretForm[] {
  const bytes = Buffer.from(secret);
  const forms: SecretForm[] = [
    { name: 'raw', text: secret },
    { name: 'url-encoded', text: encodeURIComponent(secret) },
    { name: 'form-encoded', text: new URLSearchParams({ x: secret }).toString().slice(2) },
    { name: 'json-escaped', text: JSON.stringify(secret).slice(1, -1) },
  ];
  for (const alphabet of ['base64', 'base64url'] as const) {
    for (const shift of [0, 1, 2]) {
      forms.push({ name: `${alphabet} (offset ${shift})`, text: base64Core(bytes, shift, alphabet) });
    }
  }
  // The same text twice (e.g. raw and URL-encoded of an alphanumeric secret) is looked for once.
  const seen = new Set<string>();
  return [...forms, ...extra].filter((f) => f.text.length >= 16 && !seen.has(f.text) && seen.add(f.text));
}

export function findSecret(haystacks: Haystack[], forms: SecretForm[]): Sighting[] {
  const sightings: Sighting[] = [];
  for (const { where, text } of haystacks) {
    const s = typeof text === 'string' ? text : text.toString('latin1');
    for (const form of forms) {
      const needle = typeof text === 'string' ? form.text : Buffer.from(form.text).toString('latin1');
      const at = s.indexOf(needle);
      if (at === -1) continue;
      sightings.push({
        where,
        form: form.name,
        context: s.slice(Math.max(0, at - 60), at + needle.length + 60),
      });
    }
  }
  return sightings;
}
