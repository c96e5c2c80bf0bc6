import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { z } from "zod";
import { parseJson } from "./json.ts";
import { errorMessage } from "./errors.ts";

/**
 * What a signed message is: from the app, a deploy job or a live-preview request; from an agent, a
 * deploy report, a live-preview report, a drift report or its status (online, and what it has
 * applied). The kind is signed, so none can pass for another (a preview request is never a deploy).
 */
export type SignedKind = "job" | "report" | "preview" | "live" | "drift" | "status";

/** A signed message as it travels through Redis. */
export const envelopeSchema = z.strictObject({
  v: z.literal(1),
  kind: z.enum(["job", "report", "preview", "live", "drift", "status"]),
  /** The payload as JSON text, exactly as signed. */
  body: z.string(),
  /**
   * Ed25519 signature of `sluice/<kind>/v1\n<body>`, base64: 64 bytes, in the one canonical
   * spelling (the last character's unused bits zero, both padding characters), so no two envelopes
   * that differ by a byte both verify.
   */
  sig: z.string().regex(/^[A-Za-z0-9+/]{85}[AQgw]==$/, "not a base64 Ed25519 signature"),
});
/** A signed message. */
export type Envelope = z.infer<typeof envelopeSchema>;

/** A signature that does not verify, or a message that is not an envelope: never acted on. */
export class SignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SignatureError";
  }
}

// The kind is part of what is signed, so a report can never be replayed as a job.
function signedBytes(kind: SignedKind, body: string): Buffer {
  return Buffer.from(`sluice/${kind}/v1\n${body}`, "utf8");
}

function ed25519Key(pem: string, create: (pem: string) => KeyObject, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = create(pem);
  } catch (error) {
    throw new SignatureError(`the ${what} key is not a PEM ${what === "signing" ? "private" : "public"} key: ${errorMessage(error)}`);
  }
  if (key.asymmetricKeyType !== "ed25519")
    throw new SignatureError(`${what} keys must be Ed25519, got ${key.asymmetricKeyType ?? "unknown"}`);
  return key;
}

/** Parses a PEM Ed25519 private key. */
export function privateKeyFromPem(pem: string): KeyObject {
  return ed25519Key(pem, createPrivateKey, "signing");
}

/** Parses a PEM Ed25519 public key. */
export function publicKeyFromPem(pem: string): KeyObject {
  return ed25519Key(pem, createPublicKey, "verification");
}

/**
 * The keys a signature may verify with: one, or several while a rotation overlaps (a message
 * signed by any of them verifies).
 */
export type VerificationKeys = KeyObject | readonly KeyObject[];

/**
 * Parses every PEM Ed25519 public key in `text` (one or more, one after the other; `#` comment
 * lines and blank lines between them are allowed).
 * @throws SignatureError naming the key (by its position) that does not parse, or when there is none
 */
export function publicKeysFromPem(text: string): KeyObject[] {
  const blocks = [...text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g)];
  const rest = blocks.reduce((left, block) => left.replace(block[0], ""), text);
  const stray = rest.split("\n").find((line) => line.trim() !== "" && !line.trim().startsWith("#"));
  if (stray !== undefined) throw new SignatureError(`a line outside any PEM key: ${JSON.stringify(stray.trim().slice(0, 40))}`);
  if (blocks.length === 0) throw new SignatureError("no PEM public key (-----BEGIN PUBLIC KEY-----)");
  return blocks.map((block, index) => {
    try {
      return publicKeyFromPem(block[0]);
    } catch (error) {
      throw new SignatureError(`key ${index + 1} of ${blocks.length}: ${errorMessage(error)}`);
    }
  });
}

/** Signs a payload. */
export function seal(kind: SignedKind, payload: unknown, key: KeyObject): Envelope {
  const body = JSON.stringify(payload);
  return { v: 1, kind, body, sig: sign(null, signedBytes(kind, body), key).toString("base64") };
}

/**
 * Verifies an envelope of the expected kind and returns its payload (still to be validated
 * against its schema).
 * @throws SignatureError when the envelope is malformed, of another kind, or signed by none of `keys`
 */
export function open(kind: SignedKind, envelope: unknown, keys: VerificationKeys): unknown {
  const parsed = envelopeSchema.safeParse(envelope);
  if (!parsed.success) throw new SignatureError(`not a signed ${kind}: ${parsed.error.issues[0]?.message ?? "malformed"}`);
  if (parsed.data.kind !== kind) throw new SignatureError(`expected a signed ${kind}, got a signed ${parsed.data.kind}`);
  const bytes = signedBytes(kind, parsed.data.body);
  const signature = Buffer.from(parsed.data.sig, "base64");
  const candidates: readonly KeyObject[] = Array.isArray(keys) ? keys : [keys as KeyObject];
  if (!candidates.some((key) => verify(null, bytes, key, signature))) {
    throw new SignatureError(
      `the ${kind}'s signature does not verify with the configured public key${candidates.length > 1 ? `s (${candidates.length})` : ""}`,
    );
  }
  return parseJson(parsed.data.body);
}

/** A new Ed25519 key pair as PEM. */
export function generateSigningKeys(): { privateKey: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    privateKey: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKey: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}
