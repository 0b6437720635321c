// What the official router imports from `jose` (https://deno.land/x/jose, jsr:@panva/jose),
// mapped here by import_map.json because the sandbox has no network. Enough to verify the JWTs
// Supabase issues: HS256 with JWT_SECRET, and ES256/RS256 against a local JWK set.

export interface JSONWebKeySet {
  keys: JsonWebKey[];
}

export interface ProtectedHeader {
  alg?: string;
  kid?: string;
  typ?: string;
}

export class JOSEError extends Error {
  code = "ERR_JOSE_GENERIC";
  constructor(message: string) {
    super(message);
    this.name = this.constructor.name;
  }
}

export class JWSInvalid extends JOSEError {
  override code = "ERR_JWS_INVALID";
}

export class JWSSignatureVerificationFailed extends JOSEError {
  override code = "ERR_JWS_SIGNATURE_VERIFICATION_FAILED";
  constructor() {
    super("signature verification failed");
  }
}

export class JWTExpired extends JOSEError {
  override code = "ERR_JWT_EXPIRED";
  constructor() {
    super('"exp" claim timestamp check failed');
  }
}

export class JWTClaimValidationFailed extends JOSEError {
  override code = "ERR_JWT_CLAIM_VALIDATION_FAILED";
}

function base64url(text: string): Uint8Array<ArrayBuffer> {
  const padded = text.replace(/-/g, "+").replace(/_/g, "/").padEnd(
    Math.ceil(text.length / 4) * 4,
    "=",
  );
  const binary = atob(padded);
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function parts(jwt: string): [string, string, string] {
  if (typeof jwt !== "string") throw new JWSInvalid("Compact JWS must be a string");
  const split = jwt.split(".");
  if (split.length !== 3) throw new JWSInvalid("Invalid Compact JWS");
  return split as [string, string, string];
}

function json<T>(segment: string): T {
  try {
    return JSON.parse(new TextDecoder().decode(base64url(segment))) as T;
  } catch {
    throw new JWSInvalid("Invalid Compact JWS");
  }
}

export function decodeProtectedHeader(jwt: string): ProtectedHeader {
  return json<ProtectedHeader>(parts(jwt)[0]);
}

export function decodeJwt(jwt: string): Record<string, unknown> {
  return json<Record<string, unknown>>(parts(jwt)[1]);
}

type KeyGetter = (header: ProtectedHeader) => Promise<CryptoKey>;

const ALGORITHMS: Record<
  string,
  { import: RsaHashedImportParams | EcKeyImportParams; verify: AlgorithmIdentifier | EcdsaParams }
> = {
  ES256: {
    import: { name: "ECDSA", namedCurve: "P-256" },
    verify: { name: "ECDSA", hash: "SHA-256" },
  },
  RS256: {
    import: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
    verify: { name: "RSASSA-PKCS1-v1_5" },
  },
};

export function createLocalJWKSet(jwks: JSONWebKeySet): KeyGetter {
  return async (header) => {
    const algorithm = ALGORITHMS[header.alg ?? ""];
    const jwk = jwks.keys.find((key) =>
      (header.kid === undefined || (key as { kid?: string }).kid === header.kid) &&
      ((key as { alg?: string }).alg === undefined || (key as { alg?: string }).alg === header.alg)
    );
    if (!algorithm || !jwk) throw new JOSEError("no applicable key found in the JSON Web Key Set");
    return await crypto.subtle.importKey("jwk", jwk, algorithm.import, false, ["verify"]);
  };
}

export async function jwtVerify(
  jwt: string,
  key: Uint8Array<ArrayBuffer> | KeyGetter,
): Promise<{ payload: Record<string, unknown>; protectedHeader: ProtectedHeader }> {
  const [head, body, signature] = parts(jwt);
  const header = decodeProtectedHeader(jwt);
  const data = new TextEncoder().encode(`${head}.${body}`);
  let valid: boolean;
  if (key instanceof Uint8Array) {
    if (header.alg !== "HS256") {
      throw new JOSEError(`"alg" (Algorithm) Header Parameter value not allowed`);
    }
    const hmac = await crypto.subtle.importKey(
      "raw",
      key,
      { name: "HMAC", hash: "SHA-256" },
      false,
      [
        "verify",
      ],
    );
    valid = await crypto.subtle.verify("HMAC", hmac, base64url(signature), data);
  } else {
    const algorithm = ALGORITHMS[header.alg ?? ""];
    if (!algorithm) throw new JOSEError(`"alg" (Algorithm) Header Parameter value not allowed`);
    valid = await crypto.subtle.verify(
      algorithm.verify,
      await key(header),
      base64url(signature),
      data,
    );
  }
  if (!valid) throw new JWSSignatureVerificationFailed();
  const payload = decodeJwt(jwt);
  const now = Math.floor(Date.now() / 1000);
  if (typeof payload.exp === "number" && payload.exp <= now) throw new JWTExpired();
  if (typeof payload.nbf === "number" && payload.nbf > now) {
    throw new JWTClaimValidationFailed('"nbf" claim timestamp check failed');
  }
  return { payload, protectedHeader: header };
}
