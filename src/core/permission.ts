// Repository permission levels as GitHub's collaborator permission API reports them. Both the
// app's permission checks (commands, live previews) and the approval policy rank them here.

/** A repository permission level, least to most. */
export type Permission = "none" | "read" | "triage" | "write" | "maintain" | "admin";
/** Permission levels in increasing order. */
export const PERMISSION_ORDER: readonly Permission[] = ["none", "read", "triage", "write", "maintain", "admin"];

/** Whether `actual` is at least `required`. */
export function permits(actual: Permission, required: Permission): boolean {
  return PERMISSION_ORDER.indexOf(actual) >= PERMISSION_ORDER.indexOf(required);
}
