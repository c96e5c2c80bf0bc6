/**
 * A secret setting given inline (with `\n` escapes, as in .env files) or as the path of a file
 * (`<NAME>_PATH`), which is the safer way since the secret then stays out of the process
 * environment. `read` reads the file; undefined when neither is given.
 */
export async function inlineOrFile(
  inline: string | undefined,
  path: string | undefined,
  read: (path: string) => Promise<string>,
): Promise<string | undefined> {
  if (inline !== undefined) return inline.replace(/\\n/g, "\n");
  return path === undefined ? undefined : read(path);
}
