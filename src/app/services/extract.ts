import { createWriteStream } from "node:fs";
import { mkdir, symlink } from "node:fs/promises";
import { dirname, isAbsolute, normalize, relative, resolve } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { extract as tarExtract, type Header } from "tar-stream";

/** Limits on what one tarball may unpack to. */
export interface ExtractLimits {
  maxBytes: number;
  maxFiles: number;
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
 * names, `..` segments, links that point outside the checkout, hard links and device files, and
 * stops past `maxBytes` or `maxFiles`. On error, what was written is left for the caller to remove.
 */
export async function extractTarball(archive: Buffer, root: string, limits: ExtractLimits): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
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
          await pipeline(entry, createWriteStream(target, { mode: 0o644 }));
          break;
        }
        case "symlink": {
          const link = header.linkname;
          const pointsTo = resolve(dirname(target), link);
          if (isAbsolute(link) || !inside(root, pointsTo)) throw new UnsafeArchiveError(`tarball symlink "${raw}" points outside the checkout (${link})`);
          await mkdir(dirname(target), { recursive: true });
          await symlink(link, target);
          entry.resume();
          break;
        }
        default:
          throw new UnsafeArchiveError(`tarball entry "${raw}" is a ${header.type}, which a checkout may not contain`);
      }
    }
  })();
  const source = pipeline(Readable.from([archive]), createGunzip(), extractor);
  // Whichever fails first decides; stop the other.
  try {
    await Promise.all([done, source]);
  } catch (error) {
    extractor.destroy();
    if (error instanceof UnsafeArchiveError) throw error;
    throw new UnsafeArchiveError(`tarball cannot be read: ${error instanceof Error ? error.message : String(error)}`);
  }
  return { files, bytes };
}

