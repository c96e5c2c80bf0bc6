import { createWriteStream } from "node:fs";
import { mkdir, symlink } from "node:fs/promises";
import { dirname, isAbsolute, normalize, relative, resolve } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { extract as tarExtract, type Header } from "tar-stream";
import { errorMessage } from "../../core/errors.ts";
import { resolveInCheckout } from "../../render/files.ts";

/** Limits on what one tarball may unpack to. */
export interface ExtractLimits {
  maxBytes: number;
  maxFiles: number;
  /** Compressed bytes read at the most (default `maxBytes`): a download is cut off past it. */
  maxArchiveBytes?: number;
}

/** A tarball that is unsafe or too large to unpack; names the entry. */
export class UnsafeArchiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnsafeArchiveError";
  }
}

/** Strips GitHub's top-level `owner-repo-sha/` directory from an entry name. */
function stripTop(name: string): string {
  const slash = name.indexOf("/");
  return slash < 0 ? "" : name.slice(slash + 1);
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}

/**
 * Unpacks a gzipped GitHub tarball into `root` (which must exist and be empty). Refuses absolute
 * names, `..` segments, hard links, device files and duplicate entries, and stops past `maxBytes`
 * or `maxFiles`. Symbolic links are made last, so no entry is ever written through one, and then
 * each is followed through the real tree: one that leads outside the checkout, even by way of
 * other links, refuses the whole archive. On error, what was written is left for the caller to
 * remove.
 */
export async function extractTarball(
  archive: Buffer | Readable,
  root: string,
  limits: ExtractLimits,
): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  const links: { raw: string; name: string; target: string; link: string }[] = [];
  const extractor = tarExtract();
  const done = (async () => {
    for await (const entry of extractor) {
      const header: Header = entry.header;
      const raw = header.name;
      // GitHub's tarballs start with a pax global header holding the commit id; it is metadata.
      const type: string = header.type;
      if (type === "pax-global-header" || type === "pax-header") {
        entry.resume();
        continue;
      }
      const name = stripTop(raw);
      if (name === "") {
        entry.resume();
        continue;
      }
      if (isAbsolute(raw) || name.split("/").includes("..")) throw new UnsafeArchiveError(`tarball entry "${raw}" escapes the checkout`);
      const target = resolve(root, normalize(name));
      if (!inside(root, target)) throw new UnsafeArchiveError(`tarball entry "${raw}" escapes the checkout`);
      switch (header.type) {
        case "directory":
          await mkdir(target, { recursive: true });
          entry.resume();
          break;
        case "file":
        case "contiguous-file": {
          files += 1;
          bytes += header.size;
          if (files > limits.maxFiles) throw new UnsafeArchiveError(`tarball has more than ${limits.maxFiles} files`);
          if (bytes > limits.maxBytes) throw new UnsafeArchiveError(`tarball unpacks to more than ${limits.maxBytes} bytes`);
          await mkdir(dirname(target), { recursive: true });
          // `wx` fails on an existing path: a second entry of one name never overwrites the first.
          await pipeline(entry, createWriteStream(target, { mode: 0o644, flags: "wx" })).catch((error: unknown) => {
            throw new UnsafeArchiveError(`tarball entry "${raw}" cannot be written: ${errorMessage(error)}`);
          });
          break;
        }
        case "symlink": {
          const link = header.linkname;
          const pointsTo = resolve(dirname(target), link);
          if (isAbsolute(link) || !inside(root, pointsTo))
            throw new UnsafeArchiveError(`tarball symlink "${raw}" points outside the checkout (${link})`);
          links.push({ raw, name, target, link });
          entry.resume();
          break;
        }
        default:
          throw new UnsafeArchiveError(`tarball entry "${raw}" is a ${header.type}, which a checkout may not contain`);
      }
    }
  })();
  const maxArchive = limits.maxArchiveBytes ?? limits.maxBytes;
  let archived = 0;
  const counted = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      archived += chunk.length;
      if (archived > maxArchive) callback(new UnsafeArchiveError(`tarball is larger than ${maxArchive} bytes`));
      else callback(null, chunk);
    },
  });
  const source = pipeline(Buffer.isBuffer(archive) ? Readable.from([archive]) : archive, counted, createGunzip(), extractor);
  // Whichever fails first decides; stop the other.
  try {
    await Promise.all([done, source]);
  } catch (error) {
    extractor.destroy();
    if (error instanceof UnsafeArchiveError) throw error;
    throw new UnsafeArchiveError(`tarball cannot be read: ${errorMessage(error)}`);
  }
  await makeLinks(root, links);
  return { files, bytes };
}

/** Creates the archive's symbolic links, then follows each through the real tree. */
async function makeLinks(root: string, links: readonly { raw: string; name: string; target: string; link: string }[]): Promise<void> {
  for (const { raw, target, link } of links) {
    await mkdir(dirname(target), { recursive: true });
    await symlink(link, target).catch((error: unknown) => {
      throw new UnsafeArchiveError(`tarball symlink "${raw}" cannot be made: ${errorMessage(error)}`);
    });
  }
  for (const { raw, name, link } of links) {
    const resolved = await resolveInCheckout(root, name);
    if (resolved.kind === "outside")
      throw new UnsafeArchiveError(`tarball symlink "${raw}" resolves outside the checkout (${link}, through ${resolved.via})`);
    if (resolved.kind === "loop") throw new UnsafeArchiveError(`tarball symlink "${raw}" is part of a loop of symbolic links`);
  }
}
