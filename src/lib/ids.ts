/**
 * Prefixed, opaque ids (`org_…`, `prj_…`): the prefix tells a reader what an id
 * names, the rest is 16 random base-32 characters (80 bits).
 */
const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";

export type IdPrefix =
  | "usr" | "ses" | "acc" | "vrf" | "tfa" | "org" | "mem" | "inv" | "prj" | "pmb"
  | "apk" | "rft" | "aud" | "mail" | "hst" | "job" | "lse" | "evt" | "reg"
  | "app" | "dep" | "aev" | "ins" | "iev" | "vol" | "ssh" | "cmd"
  | "dev" | "syi" | "scf" | "sye" | "whk" | "whd" | "ntf";

export function randomString(length: number, alphabet = ALPHABET): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  let out = "";
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}

export function newId(prefix: IdPrefix): string {
  return `${prefix}_${randomString(16)}`;
}
