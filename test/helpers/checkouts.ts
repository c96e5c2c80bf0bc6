import { cp, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The fixture repositories under test/fixtures/repos. */
export const FIXTURES = fileURLToPath(new URL("../fixtures/repos/", import.meta.url));

const created: string[] = [];

/** A fresh temporary directory, removed by {@link removeCheckouts}. */
export async function tempDir(prefix = "sluice-test-"): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  created.push(dir);
  return dir;
}

/** A writable copy of a fixture repository, with `changes` applied (null deletes a file). */
export async function checkout(fixture: string | undefined, changes: Record<string, string | null> = {}): Promise<string> {
  const dir = await tempDir();
  if (fixture) await cp(join(FIXTURES, fixture), dir, { recursive: true });
  await writeTree(dir, changes);
  return dir;
}

/** Writes (or with null, deletes) files under `dir`. */
export async function writeTree(dir: string, files: Record<string, string | null>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    const target = join(dir, path);
    if (content === null) {
      await rm(target, { force: true, recursive: true });
    } else {
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, content);
    }
  }
}

/** Removes every directory made by this module. */
export async function removeCheckouts(): Promise<void> {
  await Promise.all(created.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}
