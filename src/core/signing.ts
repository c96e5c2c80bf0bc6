import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { z } from "zod";
import { parseJson } from "./json.ts";
import { errorMessage } from "./errors.ts";

/**
 * What a signed message is: from the app, a deploy job or a live-preview request; from an agent, a
 * deploy report or a live-preview report. The kind is signed, so none can pass for another (a
 * preview request is never a deploy).
 */
export type SignedKind = "job" | "report" | "preview" | "live" | "drift";

/** A signed message as it travels through Redis. */
export const envelopeSchema = z.strictObject({
  v: z.literal(1),
  kind: z.enum(["job", "report", "preview", "live", "drift"]),
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

/** Signs a payload. */
export function seal(kind: SignedKind, payload: unknown, key: KeyObject): Envelope {
  const body = JSON.stringify(payload);
  return { v: 1, kind, body, sig: sign(null, signedBytes(kind, body), key).toString("base64") };
}

/**
 * Verifies an envelope of the expected kind and returns its payload (still to be validated
 * against its schema).
 * @throws SignatureError when the envelope is malformed, of another kind, or not signed by `key`
 */
export function open(kind: SignedKind, envelope: unknown, key: KeyObject): unknown {
  const parsed = envelopeSchema.safeParse(envelope);
  if (!parsed.success) throw new SignatureError(`not a signed ${kind}: ${parsed.error.issues[0]?.message ?? "malformed"}`);
  if (parsed.data.kind !== kind) throw new SignatureError(`expected a signed ${kind}, got a signed ${parsed.data.kind}`);
  if (!verify(null, signedBytes(kind, parsed.data.body), key, Buffer.from(parsed.data.sig, "base64"))) {
    throw new SignatureError(`the ${kind}'s signature does not verify with the configured public key`);
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
