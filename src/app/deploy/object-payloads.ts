import { gzipSync } from "node:zlib";
import type { RedisClient } from "../../redis/connection.ts";
import { blobKey, objectsDigest, type ObjectsPayload } from "../../core/agent-protocol.ts";
import type { KubeObject } from "../../core/manifest.ts";

/** Objects larger than this travel as a compressed blob in Redis rather than inside the signed message. */
const INLINE_LIMIT = 256 * 1024;
const BLOB_TTL_SECONDS = 30 * 24 * 3600;

/**
 * The objects of a signed job or live-preview request, with their digest (which is signed, so the
 * agent checks a blob against it): inline, or as a compressed, content-addressed blob when large.
 */
export async function objectsPayload(
  redis: RedisClient,
  environment: string,
  objects: readonly KubeObject[],
): Promise<{ digest: string; objects: ObjectsPayload }> {
  const digest = objectsDigest(objects);
  const body = JSON.stringify(objects);
  if (body.length <= INLINE_LIMIT) return { digest, objects: { inline: [...objects] } };
  const key = blobKey(environment, digest);
  await redis.set(key, gzipSync(body), "EX", BLOB_TTL_SECONDS);
  return { digest, objects: { blob: key } };
}
