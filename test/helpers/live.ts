import { ApiException, type KubernetesObjectApi } from "@kubernetes/client-node";

/** The `key` of the ConfigMap `settings` a test repository deploys into `namespace`, or undefined while there is none. */
export async function liveSettingsValue(kube: KubernetesObjectApi, namespace: string): Promise<string | undefined> {
  try {
    const live = (await kube.read({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings", namespace } })) as {
      data?: Record<string, string>;
    };
    return live.data?.key;
  } catch (error) {
    if (error instanceof ApiException && error.code === 404) return undefined;
    throw error;
  }
}
