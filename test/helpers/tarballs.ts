import { gzipSync } from "node:zlib";
import { pack, type Header } from "tar-stream";

/** A tarball entry: a file when it has a body, a directory or link otherwise. */
export type Entry = Partial<Omit<Header, "type">> & { name: string; type?: string; body?: string };

/** A gzipped tarball shaped like GitHub's: a pax global header with the commit id, then the entries. */
export async function tarball(entries: Entry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    p.on("data", (c: unknown) => {
      chunks.push(c as Buffer);
    });
    p.on("end", resolve);
    p.on("error", reject);
  });
  p.entry({ name: "pax_global_header", type: "pax-global-header", pax: { comment: "0123456789abcdef" } } as unknown as Header);
  for (const { body, ...header } of entries) {
    if (body !== undefined) p.entry({ type: "file", ...header } as Header, body);
    else p.entry({ type: "directory", ...header } as Header);
  }
  p.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}
