import { z } from "zod";

/** A full commit SHA, as GitHub gives it in webhooks. */
export const commitShaSchema = z.string().regex(/^[0-9a-f]{40}$/, "must be a 40-character commit SHA");

/** A commit as people read it: the first seven characters of its SHA. */
export function shortSha(sha: string): string {
  return sha.slice(0, 7);
}

/** A repository as jobs name it. */
export const repositoryRefSchema = z.strictObject({
  owner: z.string().min(1),
  name: z.string().min(1),
  id: z.number().int().positive(),
});
/** A repository as jobs name it. */
export type RepositoryRef = z.infer<typeof repositoryRefSchema>;

/** `owner/name`, as GitHub writes a repository's full name. */
export function fullName(repository: { readonly owner: string; readonly name: string }): string {
  return `${repository.owner}/${repository.name}`;
}
