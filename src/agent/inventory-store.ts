import { createHash } from "node:crypto";
import { inventorySchema, type Inventory } from "../core/inventory.ts";
import { MANAGED_BY } from "../core/inventory.ts";
import type { Cluster } from "./kube/cluster.ts";

/** Where inventories live: one ConfigMap per repository environment in the agent's namespace. */
export class InventoryStore {
  readonly #cluster: Cluster;
  readonly #namespace: string;

  constructor(cluster: Cluster, namespace: string) {
    this.#cluster = cluster;
    this.#namespace = namespace;
  }

  #name(repository: string, environment: string): string {
    return `sluice-inventory-${createHash("sha256").update(`${repository}\n${environment}`).digest("hex").slice(0, 16)}`;
  }

  /** The stored inventory, or undefined before the first deploy. A corrupt one is an error. */
  async read(repository: string, environment: string): Promise<Inventory | undefined> {
    const live = await this.#cluster.get({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: this.#name(repository, environment), namespace: this.#namespace } });
    const data = live?.data as Record<string, string> | undefined;
    if (!data?.inventory) return undefined;
    const parsed = inventorySchema.safeParse(JSON.parse(data.inventory));
    if (!parsed.success) throw new Error(`inventory ConfigMap ${this.#namespace}/${this.#name(repository, environment)} is corrupt: ${parsed.error.message}`);
    return parsed.data;
  }

  /** Writes the inventory with server-side apply. */
  async write(inventory: Inventory): Promise<void> {
    await this.#cluster.apply({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: this.#name(inventory.repository, inventory.environment),
        namespace: this.#namespace,
        labels: { [MANAGED_BY]: "sluice", "sluice.dev/inventory": "true" },
        annotations: { "sluice.dev/repository": inventory.repository, "sluice.dev/environment": inventory.environment },
      },
      data: { inventory: JSON.stringify(inventory) },
    });
  }
}
