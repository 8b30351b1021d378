/**
 * Named volumes: made (labelled) before a container mounts them, and measured. Docker's
 * local driver takes no size: a volume holds what its filesystem lets it.
 */
import { apiError, type DockerApi, enc, labelList } from "./api.ts";

export interface VolumeUsage {
  name: string;
  labels: Record<string, string>;
  /** Bytes the volume holds; null when Docker could not measure it (another driver). */
  usedBytes: number | null;
}

/** Makes the volume unless it is there; an existing one (with its data) is used as it is. */
export async function ensureVolume(api: DockerApi, name: string, labels: Record<string, string>): Promise<"created" | "existing"> {
  const found = await api.call("GET", `/volumes/${enc(name)}`);
  if (found.status === 200) return "existing";
  if (found.status !== 404) throw apiError(`inspect volume ${name}`, found.status, found.text);
  const res = await api.call("POST", "/volumes/create", { body: { Name: name, Driver: "local", Labels: labels } });
  if (res.status !== 201) throw apiError(`create volume ${name}`, res.status, res.text);
  return "created";
}

/** The volumes that have every label given (an empty value: any value), with what each holds. */
export async function volumeUsage(api: DockerApi, labelFilter: Record<string, string>): Promise<VolumeUsage[]> {
  const wanted = labelList(labelFilter);
  const df = (await api.json("GET", "/system/df", { type: "volume" })) as { Volumes?: any[] | null };
  return (df.Volumes ?? [])
    .filter((v) => wanted.every((l) => (l.includes("=") ? v.Labels?.[l.slice(0, l.indexOf("="))] === l.slice(l.indexOf("=") + 1) : l in (v.Labels ?? {}))))
    .map((v) => ({ name: v.Name, labels: v.Labels ?? {}, usedBytes: typeof v.UsageData?.Size === "number" && v.UsageData.Size >= 0 ? v.UsageData.Size : null }));
}
